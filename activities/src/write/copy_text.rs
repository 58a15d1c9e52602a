//! Rows in PostgreSQL's `COPY .. FROM STDIN` text format: one line per row, columns separated by
//! tabs, `\N` for NULL, and backslash escapes for the few bytes the format reserves. The write
//! activity streams these into the index tables, and `blockfill bench --dense` copies the same
//! bytes to measure the database's own ceiling.

use crate::source::{BlockRow, LogRow, TransactionRow};

/// The columns of `blocks`, in the order [`blocks`] writes them.
pub const BLOCK_COLUMNS: &str = "chain, number, hash, parent_hash, timestamp, miner, gas_used, \
     gas_limit, base_fee_per_gas, tx_count, log_count";
/// The columns of `transactions`, in the order [`transactions`] writes them.
pub const TRANSACTION_COLUMNS: &str = "chain, block_number, tx_index, hash, from_address, \
     to_address, value, nonce, gas, gas_price, input, tx_type";
/// The columns of `logs`, in the order [`logs`] writes them.
pub const LOG_COLUMNS: &str = "chain, block_number, log_index, tx_index, tx_hash, address, \
     topics, data";

/// One `COPY` text payload under construction.
#[derive(Debug, Default)]
pub struct CopyText {
    bytes: Vec<u8>,
    row_started: bool,
}

impl CopyText {
    /// An empty payload with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(capacity),
            row_started: false,
        }
    }

    /// The payload.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    fn separate(&mut self) {
        if self.row_started {
            self.bytes.push(b'\t');
        }
        self.row_started = true;
    }

    /// A text column.
    pub fn text(&mut self, value: &str) {
        self.separate();
        escape_into(&mut self.bytes, value);
    }

    /// A nullable text (or numeric) column.
    pub fn optional_text(&mut self, value: Option<&str>) {
        match value {
            Some(value) => self.text(value),
            None => self.null(),
        }
    }

    /// An integer column.
    pub fn integer(&mut self, value: impl itoa::Integer) {
        self.separate();
        self.bytes
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }

    /// A nullable integer column.
    pub fn optional_integer(&mut self, value: Option<impl itoa::Integer>) {
        match value {
            Some(value) => self.integer(value),
            None => self.null(),
        }
    }

    /// NULL.
    pub fn null(&mut self) {
        self.separate();
        self.bytes.extend_from_slice(b"\\N");
    }

    /// A `text[]` column: an array literal (`{"a","b"}`) with every element quoted, written with
    /// the text format's escapes (a backslash the literal needs becomes two).
    pub fn text_array(&mut self, values: &[String]) {
        self.separate();
        self.bytes.push(b'{');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.bytes.push(b',');
            }
            self.bytes.push(b'"');
            if value
                .bytes()
                .any(|b| matches!(b, b'"' | b'\\' | b'\n' | b'\r' | b'\t'))
            {
                let mut element = String::with_capacity(value.len() + 2);
                for c in value.chars() {
                    if matches!(c, '"' | '\\') {
                        element.push('\\');
                    }
                    element.push(c);
                }
                escape_into(&mut self.bytes, &element);
            } else {
                self.bytes.extend_from_slice(value.as_bytes());
            }
            self.bytes.push(b'"');
        }
        self.bytes.push(b'}');
    }

    /// Ends the current row.
    pub fn end_row(&mut self) {
        self.bytes.push(b'\n');
        self.row_started = false;
    }
}

/// Appends `value` with the text format's escapes: backslash, newline, carriage return and tab.
fn escape_into(bytes: &mut Vec<u8>, value: &str) {
    if !value
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\n' | b'\r' | b'\t'))
    {
        bytes.extend_from_slice(value.as_bytes());
        return;
    }
    for b in value.bytes() {
        match b {
            b'\\' => bytes.extend_from_slice(b"\\\\"),
            b'\n' => bytes.extend_from_slice(b"\\n"),
            b'\r' => bytes.extend_from_slice(b"\\r"),
            b'\t' => bytes.extend_from_slice(b"\\t"),
            other => bytes.push(other),
        }
    }
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `rows` of chain `chain` for `COPY blocks (BLOCK_COLUMNS)`.
pub fn blocks(chain: &str, rows: &[BlockRow]) -> Vec<u8> {
    let mut out = CopyText::with_capacity(rows.len() * 256);
    for b in rows {
        out.text(chain);
        out.integer(to_i64(b.number));
        out.text(&b.hash);
        out.text(&b.parent_hash);
        out.integer(to_i64(b.timestamp));
        out.text(&b.miner);
        out.integer(to_i64(b.gas_used));
        out.integer(to_i64(b.gas_limit));
        out.optional_text(b.base_fee_per_gas.as_deref());
        out.integer(b.tx_count);
        out.integer(b.log_count);
        out.end_row();
    }
    out.into_bytes()
}

/// `rows` of chain `chain` for `COPY transactions (TRANSACTION_COLUMNS)`.
pub fn transactions(chain: &str, rows: &[TransactionRow]) -> Vec<u8> {
    let mut out = CopyText::with_capacity(rows.iter().map(|t| 256 + t.input.len()).sum());
    for t in rows {
        out.text(chain);
        out.integer(to_i64(t.block_number));
        out.integer(t.tx_index);
        out.text(&t.hash);
        out.text(&t.from_address);
        out.optional_text(t.to_address.as_deref());
        out.text(&t.value);
        out.integer(to_i64(t.nonce));
        out.integer(to_i64(t.gas));
        out.optional_text(t.gas_price.as_deref());
        out.text(&t.input);
        out.optional_integer(t.tx_type.map(to_i64));
        out.end_row();
    }
    out.into_bytes()
}

/// `rows` of chain `chain` for `COPY logs (LOG_COLUMNS)`.
pub fn logs(chain: &str, rows: &[LogRow]) -> Vec<u8> {
    let mut out = CopyText::with_capacity(
        rows.iter()
            .map(|l| 256 + 70 * l.topics.len() + l.data.len())
            .sum(),
    );
    for l in rows {
        out.text(chain);
        out.integer(to_i64(l.block_number));
        out.integer(l.log_index);
        out.integer(l.tx_index);
        out.text(&l.tx_hash);
        out.text(&l.address);
        out.text_array(&l.topics);
        out.text(&l.data);
        out.end_row();
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_bytes_are_escaped_and_null_is_backslash_n() {
        let mut out = CopyText::default();
        out.text("a\tb\\c\nd\re");
        out.optional_text(None);
        out.integer(-42i64);
        out.end_row();
        out.text("plain");
        out.end_row();
        assert_eq!(
            String::from_utf8(out.into_bytes()).expect("utf-8"),
            "a\\tb\\\\c\\nd\\re\t\\N\t-42\nplain\n"
        );
    }

    #[test]
    fn a_text_array_is_a_quoted_array_literal_escaped_for_copy() {
        let mut out = CopyText::default();
        out.text_array(&["0xab".to_owned(), "q\"uo\\te".to_owned()]);
        out.text_array(&[]);
        out.end_row();
        // The array literal is {"0xab","q\"uo\\te"}; COPY's own escaping doubles its backslashes.
        assert_eq!(
            String::from_utf8(out.into_bytes()).expect("utf-8"),
            "{\"0xab\",\"q\\\\\"uo\\\\\\\\te\"}\t{}\n"
        );
    }
}
