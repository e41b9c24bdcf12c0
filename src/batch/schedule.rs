//! How many pairs run at once (`jobs`) and with how many threads each (`threads`).

/// A schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// Pairs registered at the same time.
    pub jobs: usize,
    /// Worker threads per pair.
    pub threads: usize,
}

/// Pixels per thread: a pair this large or larger keeps one more thread busy. Below it,
/// per-pair serial work (decoding, pyramids, small levels) dominates and parallel pairs win.
pub const PIXELS_PER_THREAD: u64 = 4_000_000;

/// Estimated peak memory of one pair, from its decoded sizes: the images, their float pyramids,
/// the warped output, and fixed overhead (measured: 1.45–1.67 GiB for a 300-megapixel 8-bit
/// pair, 2.6–2.9 times the two inputs).
pub fn pair_peak_bytes(fixed_bytes: u64, moving_bytes: u64, fixed_pixels: u64) -> u64 {
    3 * (fixed_bytes + moving_bytes) + 2 * fixed_pixels + (64 << 20)
}

/// The schedule for `pairs` pairs whose largest has `largest_pixels` pixels and needs
/// `largest_peak` bytes, on `cores` cores with `memory` bytes available; `jobs` and `threads`
/// given by the user win. Never plans more concurrent pairs than memory holds.
pub fn plan(
    pairs: usize,
    largest_pixels: u64,
    largest_peak: u64,
    cores: usize,
    memory: Option<u64>,
    jobs: Option<usize>,
    threads: Option<usize>,
) -> Plan {
    let cores = cores.max(1);
    let by_memory = memory
        .map(|m| ((m as f64 * 0.8) / largest_peak.max(1) as f64).floor() as usize)
        .unwrap_or(usize::MAX)
        .max(1);
    let pairs = pairs.max(1);
    match (jobs, threads) {
        (Some(j), Some(t)) => Plan {
            jobs: j.max(1),
            threads: t.max(1),
        },
        (Some(j), None) => Plan {
            jobs: j.max(1),
            threads: (cores / j.max(1)).max(1),
        },
        (None, Some(t)) => Plan {
            jobs: (cores / t.max(1)).min(by_memory).min(pairs).max(1),
            threads: t.max(1),
        },
        (None, None) => {
            let threads = ((largest_pixels / PIXELS_PER_THREAD) as usize).clamp(1, cores);
            let jobs = (cores / threads).min(by_memory).min(pairs).max(1);
            // Leftover cores go to the pairs that run.
            Plan {
                jobs,
                threads: (cores / jobs).max(threads),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    #[test]
    fn many_small_pairs_run_side_by_side_and_few_huge_pairs_get_the_threads() {
        let small = plan(64, 1 << 20, 50 << 20, 8, Some(16 * GIB), None, None);
        assert_eq!(
            small,
            Plan {
                jobs: 8,
                threads: 1
            }
        );
        let huge = plan(4, 300_000_000, 2 * GIB, 8, Some(64 * GIB), None, None);
        assert_eq!(
            huge,
            Plan {
                jobs: 1,
                threads: 8
            }
        );
        let medium = plan(10, 16_000_000, 300 << 20, 8, Some(64 * GIB), None, None);
        assert_eq!(
            medium,
            Plan {
                jobs: 2,
                threads: 4
            }
        );
    }

    #[test]
    fn memory_caps_the_pairs_in_flight_and_user_choices_win() {
        let tight = plan(64, 1 << 20, 2 * GIB, 16, Some(5 * GIB), None, None);
        assert_eq!(tight.jobs, 2);
        assert_eq!(tight.threads, 8);
        assert_eq!(
            plan(64, 1 << 20, 50 << 20, 8, None, Some(2), Some(1)),
            Plan {
                jobs: 2,
                threads: 1
            }
        );
        assert_eq!(
            plan(64, 1 << 20, 50 << 20, 8, None, Some(1), None).threads,
            8
        );
        assert_eq!(plan(3, 1 << 20, 50 << 20, 8, None, None, None).jobs, 3);
    }
}
