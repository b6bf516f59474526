//! Parsers for the formats of cgroup interface files (see the kernel's cgroup-v2.rst,
//! "Interface Files"; v1 files use the same shapes).

use std::collections::BTreeMap;

/// Parses a single value; `max` (v2's "no limit") reads as `u64::MAX`.
pub(crate) fn parse_u64_or_max(content: &str) -> Option<u64> {
    let value = content.trim();
    if value == "max" {
        Some(u64::MAX)
    } else {
        value.parse().ok()
    }
}

/// Parses a flat-keyed file (`key value` per line, e.g. `memory.stat`, `cpu.stat`).
/// Lines whose value is not a number (none today) are skipped rather than failing the whole
/// file, so a kernel adding such a key does not break stats.
pub(crate) fn flat_keyed(content: &str) -> BTreeMap<String, u64> {
    content
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?;
            let value = parse_u64_or_max(words.next()?)?;
            Some((key.to_string(), value))
        })
        .collect()
}

/// One line of a nested-keyed file such as `io.stat`: `8:0 rbytes=1 wbytes=2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NestedLine {
    pub(crate) key: String,
    pub(crate) values: BTreeMap<String, u64>,
}

/// Parses a nested-keyed file (`key sub=value sub=value` per line).
pub(crate) fn nested_keyed(content: &str) -> Vec<NestedLine> {
    content
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let key = words.next()?.to_string();
            let values = words
                .filter_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    Some((name.to_string(), parse_u64_or_max(value)?))
                })
                .collect();
            Some(NestedLine { key, values })
        })
        .collect()
}

/// Parses a `major:minor` device key.
pub(crate) fn device_numbers(key: &str) -> Option<(u64, u64)> {
    let (major, minor) = key.split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Parses a whitespace-separated list of numbers (`cpuacct.usage_percpu`).
pub(crate) fn number_list(content: &str) -> Option<Vec<u64>> {
    content
        .split_whitespace()
        .map(|word| word.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_values_and_max() {
        assert_eq!(parse_u64_or_max("42\n"), Some(42));
        assert_eq!(parse_u64_or_max("max\n"), Some(u64::MAX));
        assert_eq!(parse_u64_or_max("-1"), None);
        assert_eq!(parse_u64_or_max(""), None);
    }

    #[test]
    fn flat_keyed_skips_malformed_lines() {
        let parsed = flat_keyed("cache 10\nrss 20\nbroken\nodd x\n");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed["cache"], 10);
        assert_eq!(parsed["rss"], 20);
    }

    #[test]
    fn nested_keyed_lines() {
        let parsed = nested_keyed("8:0 rbytes=1 wbytes=2 rios=3\n253:1 rbytes=max\n");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].key, "8:0");
        assert_eq!(parsed[0].values["wbytes"], 2);
        assert_eq!(parsed[1].values["rbytes"], u64::MAX);
        assert_eq!(device_numbers("253:1"), Some((253, 1)));
        assert_eq!(device_numbers("Total"), None);
    }

    #[test]
    fn number_lists() {
        assert_eq!(number_list("1 2 3 \n"), Some(vec![1, 2, 3]));
        assert_eq!(number_list("1 x"), None);
    }
}
