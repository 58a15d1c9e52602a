//! Range arithmetic: splitting a range into aligned batches, merging covered intervals and
//! finding the gaps between them. Pure functions, property-tested.

use crate::types::BlockRange;

/// Splits `range` into batches aligned to multiples of `batch_size` (`[0, 99]`, `[100, 199]`, ...),
/// trimmed to `range` at both ends. Aligned batches give the same ids whoever plans them.
///
/// Lazy: planning a window never materialises the whole backlog.
pub fn aligned_batches(range: BlockRange, batch_size: u64) -> impl Iterator<Item = BlockRange> {
    let batch_size = batch_size.max(1);
    let mut next = Some(range.from);
    std::iter::from_fn(move || {
        let from = next?;
        let cell_end = (from / batch_size)
            .saturating_mul(batch_size)
            .saturating_add(batch_size - 1);
        let to = cell_end.min(range.to);
        next = (to < range.to).then_some(to + 1);
        Some(BlockRange { from, to })
    })
}

/// Merges overlapping and adjacent ranges into a sorted list of disjoint, non-adjacent ranges.
pub fn merge(mut ranges: Vec<BlockRange>) -> Vec<BlockRange> {
    ranges.sort_unstable();
    let mut merged: Vec<BlockRange> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.from <= last.to.saturating_add(1) => {
                last.to = last.to.max(range.to);
            }
            _ => merged.push(range),
        }
    }
    merged
}

/// The parts of `within` not covered by `covered` (which must be sorted and disjoint, as
/// [`merge`] returns them), in ascending order.
pub fn gaps(covered: &[BlockRange], within: BlockRange) -> Vec<BlockRange> {
    let mut gaps = Vec::new();
    let mut cursor = within.from;
    for range in covered {
        if range.to < cursor {
            continue;
        }
        if range.from > within.to {
            break;
        }
        if range.from > cursor {
            gaps.push(BlockRange {
                from: cursor,
                to: range.from - 1,
            });
        }
        if range.to >= within.to {
            return gaps;
        }
        cursor = range.to + 1;
    }
    gaps.push(BlockRange {
        from: cursor,
        to: within.to,
    });
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn range(from: u64, to: u64) -> BlockRange {
        BlockRange { from, to }
    }

    #[test]
    fn batches_align_to_the_grid() {
        let batches: Vec<_> = aligned_batches(range(5, 250), 100).collect();
        assert_eq!(
            batches,
            vec![range(5, 99), range(100, 199), range(200, 250)]
        );
        assert_eq!(
            aligned_batches(range(7, 7), 100).collect::<Vec<_>>(),
            vec![range(7, 7)]
        );
    }

    #[test]
    fn gaps_of_nothing_is_everything() {
        assert_eq!(gaps(&[], range(0, 9)), vec![range(0, 9)]);
        assert_eq!(gaps(&[range(0, 9)], range(0, 9)), Vec::<BlockRange>::new());
        assert_eq!(
            gaps(&[range(2, 3), range(6, 20)], range(0, 9)),
            vec![range(0, 1), range(4, 5)]
        );
    }

    fn arb_range() -> impl Strategy<Value = BlockRange> {
        (0u64..10_000, 0u64..500).prop_map(|(from, len)| range(from, from + len))
    }

    proptest! {
        #[test]
        fn splitting_covers_exactly_without_overlap(r in arb_range(), size in 1u64..300) {
            let batches: Vec<_> = aligned_batches(r, size).collect();
            prop_assert_eq!(batches.first().map(|b| b.from), Some(r.from));
            prop_assert_eq!(batches.last().map(|b| b.to), Some(r.to));
            for pair in batches.windows(2) {
                prop_assert_eq!(pair[0].to + 1, pair[1].from);
            }
            for b in &batches {
                prop_assert!(b.from <= b.to);
                prop_assert!(b.len() <= size);
                prop_assert_eq!(b.from / size, b.to / size, "batch crosses a grid line");
            }
            prop_assert_eq!(batches.iter().map(BlockRange::len).sum::<u64>(), r.len());
        }

        #[test]
        fn merging_is_order_independent_and_associative(
            a in prop::collection::vec(arb_range(), 0..20),
            b in prop::collection::vec(arb_range(), 0..20),
        ) {
            let all = merge([a.clone(), b.clone()].concat());
            let mut reversed = [b.clone(), a.clone()].concat();
            reversed.reverse();
            prop_assert_eq!(&all, &merge(reversed));
            prop_assert_eq!(&all, &merge([merge(a.clone()), merge(b.clone())].concat()));
            for pair in all.windows(2) {
                prop_assert!(pair[0].to + 1 < pair[1].from, "not disjoint and non-adjacent");
            }
            // Every input block is covered, and nothing else.
            for block in 0u64..10_600 {
                let input = a.iter().chain(&b).any(|r| r.contains(block));
                let output = all.iter().any(|r| r.contains(block));
                prop_assert_eq!(input, output, "block {}", block);
            }
        }

        #[test]
        fn gaps_and_coverage_partition_the_range(
            covered in prop::collection::vec(arb_range(), 0..20),
            within in arb_range(),
        ) {
            let covered = merge(covered);
            let holes = gaps(&covered, within);
            for block in within.blocks() {
                let is_covered = covered.iter().any(|r| r.contains(block));
                let in_gap = holes.iter().any(|r| r.contains(block));
                prop_assert!(is_covered != in_gap, "block {} covered={} gap={}", block, is_covered, in_gap);
            }
            for hole in &holes {
                prop_assert!(within.from <= hole.from && hole.to <= within.to);
            }
        }
    }
}
