//! A benchmark run's progress over time, and its plot.
//!
//! [`ProgressSampler`] reads, every half second, the blocks a chain's coverage holds and the rows
//! PostgreSQL has inserted into the index tables' partitions (`pg_stat_user_tables.n_tup_ins`,
//! cumulative and cheap, unlike `count(*)`). [`Progress::write_svg`] draws blocks/s and rows/s over time as
//! an SVG: two polylines on shared time axes, text left to the viewer's fonts, so drawing needs
//! no font files (which a plotting crate's text layout would).

use std::{
    fmt::Write as _,
    path::Path,
    time::{Duration, Instant},
};

use sea_orm::sqlx::{self, PgPool};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct ProgressPoint {
    /// Seconds since sampling started.
    pub seconds: f64,
    /// Blocks the chain's coverage holds.
    pub blocks: u64,
    /// Rows inserted into blocks, transactions and logs so far (database-wide).
    pub rows: u64,
}

/// The rates between two readings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Seconds since sampling started, at the later reading.
    pub seconds: f64,
    /// Blocks a second.
    pub blocks_per_second: f64,
    /// Rows a second.
    pub rows_per_second: f64,
}

/// The readings of one run.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// In time order.
    pub points: Vec<ProgressPoint>,
}

/// Samples progress in the background until stopped.
pub(crate) struct ProgressSampler {
    stop: CancellationToken,
    task: JoinHandle<Progress>,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(500);

async fn read(pool: &PgPool, chain: &str) -> Result<(u64, u64), sqlx::Error> {
    let (blocks, rows): (i64, i64) = sqlx::query_as(
        "SELECT \
           (SELECT coalesce(sum(end_block - start_block + 1), 0)::int8 FROM coverage WHERE chain = $1), \
           (SELECT coalesce(sum(n_tup_ins), 0)::int8 FROM pg_stat_user_tables \
              WHERE relid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent IN \
                ('blocks'::regclass, 'transactions'::regclass, 'logs'::regclass)))",
    )
    .bind(chain)
    .fetch_one(pool)
    .await?;
    Ok((blocks.max(0) as u64, rows.max(0) as u64))
}

impl ProgressSampler {
    /// Starts sampling `chain` on `pool`; rows are counted from the first reading.
    pub(crate) fn start(pool: PgPool, chain: &str) -> Self {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let chain = chain.to_owned();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut progress = Progress::default();
            let mut rows_before = None;
            loop {
                if let Ok((blocks, rows)) = read(&pool, &chain).await {
                    let base = *rows_before.get_or_insert(rows);
                    progress.points.push(ProgressPoint {
                        seconds: started.elapsed().as_secs_f64(),
                        blocks,
                        rows: rows.saturating_sub(base),
                    });
                }
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(SAMPLE_EVERY) => {}
                }
            }
            progress
        });
        Self { stop, task }
    }

    /// Stops sampling and returns the readings.
    pub(crate) async fn finish(self) -> Progress {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}

impl Progress {
    /// Rows a second between the moments the run had written `from` and `to` rows (each moment
    /// interpolated between the readings around it); `None` if the run did not reach `to`.
    pub fn rows_per_second_between(&self, from: u64, to: u64) -> Option<f64> {
        self.per_second_between(from, to, |p| p.rows)
    }

    /// Blocks a second between the moments the chain's coverage held `from` and `to` blocks
    /// (committed blocks, exact, unlike the row statistics, which lag); `None` if the run did not
    /// reach `to`.
    pub fn blocks_per_second_between(&self, from: u64, to: u64) -> Option<f64> {
        self.per_second_between(from, to, |p| p.blocks)
    }

    fn per_second_between(
        &self,
        from: u64,
        to: u64,
        count: impl Fn(&ProgressPoint) -> u64,
    ) -> Option<f64> {
        let when = |target: u64| -> Option<f64> {
            let after = self.points.iter().position(|p| count(p) >= target)?;
            let b = &self.points[after];
            let Some(a) = after.checked_sub(1).map(|i| &self.points[i]) else {
                return Some(b.seconds);
            };
            let span = count(b).saturating_sub(count(a)) as f64;
            let part = if span > 0.0 {
                target.saturating_sub(count(a)) as f64 / span
            } else {
                1.0
            };
            Some(a.seconds + part * (b.seconds - a.seconds))
        };
        let seconds = when(to)? - when(from)?;
        (to > from && seconds > 0.0).then(|| (to - from) as f64 / seconds)
    }

    /// Rates between consecutive readings, smoothed over `window` readings.
    pub fn rates(&self, window: usize) -> Vec<Rate> {
        let window = window.max(1);
        self.points
            .windows(window + 1)
            .filter_map(|w| {
                let (first, last) = (w.first()?, w.last()?);
                let dt = last.seconds - first.seconds;
                (dt > 0.0).then(|| Rate {
                    seconds: last.seconds,
                    blocks_per_second: last.blocks.saturating_sub(first.blocks) as f64 / dt,
                    rows_per_second: last.rows.saturating_sub(first.rows) as f64 / dt,
                })
            })
            .collect()
    }

    /// [`Progress::write_svg`] when `path` is given, saying where.
    pub(crate) fn plot_to(&self, path: Option<&Path>, title: &str) -> std::io::Result<()> {
        if let Some(path) = path {
            self.write_svg(path, title)?;
            println!("plot                  : {}", path.display());
        }
        Ok(())
    }

    /// Writes blocks/s (top) and rows/s (bottom) over time as an SVG titled `title`.
    pub fn write_svg(&self, path: &Path, title: &str) -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, self.svg(title))
    }

    fn svg(&self, title: &str) -> String {
        const WIDTH: f64 = 720.0;
        const PANEL: f64 = 170.0;
        const LEFT: f64 = 80.0;
        const RIGHT: f64 = 20.0;
        let rates = self.rates(2);
        let end = rates.last().map_or(1.0, |r| r.seconds).max(1.0);
        let mut svg = String::new();
        let height = 60.0 + 2.0 * (PANEL + 40.0);
        let _ = write!(
            svg,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
             font-family=\"sans-serif\" font-size=\"12\">\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
             <text x=\"{LEFT}\" y=\"24\" font-size=\"15\">{}</text>",
            escape(title)
        );
        type Panel = (&'static str, fn(&Rate) -> f64, &'static str);
        let panels: [Panel; 2] = [
            ("blocks/s", |r| r.blocks_per_second, "#1f77b4"),
            ("rows/s", |r| r.rows_per_second, "#d62728"),
        ];
        for (index, (label, value, colour)) in panels.into_iter().enumerate() {
            let top = 50.0 + index as f64 * (PANEL + 40.0);
            let max = rates.iter().map(value).fold(0.0, f64::max).max(1.0);
            let x = |t: f64| LEFT + t / end * (WIDTH - LEFT - RIGHT);
            let y = |v: f64| top + PANEL - v / max * PANEL;
            let _ = write!(
                svg,
                "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#999\"/>\
                 <text x=\"{LEFT}\" y=\"{}\">{label}</text>",
                WIDTH - LEFT - RIGHT,
                top - 6.0
            );
            for tick in 0..=4 {
                let v = max * f64::from(tick) / 4.0;
                let _ = write!(
                    svg,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
                     <line x1=\"{LEFT}\" x2=\"{}\" y1=\"{2:.1}\" y2=\"{2:.1}\" stroke=\"#eee\"/>",
                    LEFT - 6.0,
                    y(v) + 4.0,
                    si(v),
                    WIDTH - RIGHT
                );
            }
            for tick in 0..=5 {
                let t = end * f64::from(tick) / 5.0;
                let _ = write!(
                    svg,
                    "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{t:.0} s</text>",
                    x(t),
                    top + PANEL + 16.0
                );
            }
            let points: Vec<String> = rates
                .iter()
                .map(|r| format!("{:.1},{:.1}", x(r.seconds), y(value(r))))
                .collect();
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" points=\"{}\"/>",
                points.join(" ")
            );
        }
        svg.push_str("</svg>\n");
        svg
    }
}

/// `12.3k`, `4.5M`: a rate as an axis label.
fn si(value: f64) -> String {
    match value {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.1}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(points: &[(f64, u64, u64)]) -> Progress {
        Progress {
            points: points
                .iter()
                .map(|&(seconds, blocks, rows)| ProgressPoint {
                    seconds,
                    blocks,
                    rows,
                })
                .collect(),
        }
    }

    #[test]
    fn the_rate_between_two_row_counts_interpolates_the_readings() {
        // 1,000 rows/s for 2 s, then 500 rows/s for 2 s.
        let p = progress(&[
            (0.0, 0, 0),
            (1.0, 0, 1_000),
            (2.0, 0, 2_000),
            (3.0, 0, 2_500),
            (4.0, 0, 3_000),
        ]);
        let rate = |from, to| p.rows_per_second_between(from, to);
        assert!((rate(0, 2_000).expect("reached") - 1_000.0).abs() < 1e-9);
        assert!((rate(2_000, 3_000).expect("reached") - 500.0).abs() < 1e-9);
        // 500 rows in the first half second, 250 in the next.
        assert!((rate(1_500, 2_250).expect("reached") - 750.0).abs() < 1e-9);
        assert_eq!(rate(0, 3_001), None, "never reached");
        let blocks = progress(&[(0.0, 0, 0), (2.0, 10, 0), (4.0, 30, 0)]);
        assert!((blocks.blocks_per_second_between(10, 30).expect("reached") - 10.0).abs() < 1e-9);
    }

    #[test]
    fn rates_are_deltas_over_the_window() {
        let p = progress(&[
            (0.0, 0, 0),
            (1.0, 100, 1_000),
            (2.0, 300, 3_000),
            (3.0, 300, 3_000),
        ]);
        let triples = |rates: Vec<Rate>| -> Vec<(f64, f64, f64)> {
            rates
                .iter()
                .map(|r| (r.seconds, r.blocks_per_second, r.rows_per_second))
                .collect()
        };
        assert_eq!(
            triples(p.rates(1)),
            vec![
                (1.0, 100.0, 1_000.0),
                (2.0, 200.0, 2_000.0),
                (3.0, 0.0, 0.0)
            ]
        );
        assert_eq!(
            triples(p.rates(2)),
            vec![(2.0, 150.0, 1_500.0), (3.0, 100.0, 1_000.0)]
        );
    }

    #[test]
    fn the_plot_has_a_line_per_rate_and_an_escaped_title() {
        let p = progress(&[(0.0, 0, 0), (1.0, 10, 20), (2.0, 20, 40), (3.0, 30, 60)]);
        let svg = p.svg("a < b");
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a &lt; b"));
        assert!(svg.contains("blocks/s") && svg.contains("rows/s"));
    }
}
