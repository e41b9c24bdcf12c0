//! Memory accounting: how much the machine has, how much this process used at its peak, and the
//! checked arithmetic that sizes buffers before they are allocated.

/// Bytes of memory available to new allocations, from `/proc/meminfo` (`MemAvailable`).
/// `None` where that cannot be read (non-Linux systems).
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_meminfo_kib(&text, "MemAvailable:").map(|kib| kib * 1024)
}

/// Peak resident set size of this process in bytes (`VmHWM` in `/proc/self/status`).
pub fn peak_rss_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_meminfo_kib(&text, "VmHWM:").map(|kib| kib * 1024)
}

fn parse_meminfo_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// `a * b * ...` in `u64`, or `None` on overflow. Sizes read from files go through this.
pub fn checked_product(factors: &[u64]) -> Option<u64> {
    factors.iter().try_fold(1u64, |acc, &f| acc.checked_mul(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meminfo_parser_reads_kib_values() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(parse_meminfo_kib(text, "MemAvailable:"), Some(1000));
        assert_eq!(parse_meminfo_kib(text, "Missing:"), None);
    }

    #[test]
    fn checked_product_detects_overflow() {
        assert_eq!(
            checked_product(&[100_000, 100_000, 4]),
            Some(40_000_000_000)
        );
        assert_eq!(checked_product(&[u64::MAX, 2]), None);
    }
}
