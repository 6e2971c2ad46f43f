//! How much of the memory it may use the trainer uses, so that administrators hear of a run
//! close to being killed for it. In a container (an AWS Batch job) that is the cgroup's
//! working set — its usage less the page cache the kernel can drop — against the cgroup's
//! limit; without a limit, against the machine's memory; and outside any memory cgroup the
//! process's resident set against the machine's memory.

use std::path::Path;

/// Memory in use and the most that may be used, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MemoryUse {
    pub used: u64,
    pub limit: u64,
}

impl MemoryUse {
    /// The share of the limit in use (0 when the limit is unknown).
    pub fn share(&self) -> f64 {
        if self.limit == 0 {
            0.0
        } else {
            self.used as f64 / self.limit as f64
        }
    }
}

/// This process's memory use, when the system says.
pub(crate) fn current() -> Option<MemoryUse> {
    read_from(Path::new("/"))
}

/// The same, reading `/proc` and `/sys` under `root`.
fn read_from(root: &Path) -> Option<MemoryUse> {
    let total = meminfo_total(&root.join("proc/meminfo"));
    let cgroup = std::fs::read_to_string(root.join("proc/self/cgroup")).unwrap_or_default();
    for line in cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        let dir = match controllers {
            "" => root.join("sys/fs/cgroup").join(path),
            c if c.split(',').any(|c| c == "memory") => {
                root.join("sys/fs/cgroup/memory").join(path)
            }
            _ => continue,
        };
        if let Some(m) = cgroup_use(&dir, controllers.is_empty(), total) {
            return Some(m);
        }
    }
    let rss = status_kib(&root.join("proc/self/status"), "VmRSS:")? * 1024;
    Some(MemoryUse {
        used: rss,
        limit: total?,
    })
}

/// A cgroup's working set and limit (v2 files when `v2`, else v1's).
fn cgroup_use(dir: &Path, v2: bool, total: Option<u64>) -> Option<MemoryUse> {
    let (usage, limit, cache) = if v2 {
        ("memory.current", "memory.max", "inactive_file")
    } else {
        (
            "memory.usage_in_bytes",
            "memory.limit_in_bytes",
            "total_inactive_file",
        )
    };
    let used = read_number(&dir.join(usage))?;
    let inactive = stat_value(&dir.join("memory.stat"), cache).unwrap_or(0);
    // "max" (v2), or v1's huge number, mean no limit of the cgroup's own.
    let limit = read_number(&dir.join(limit)).filter(|l| total.is_none_or(|t| *l < t));
    Some(MemoryUse {
        used: used.saturating_sub(inactive),
        limit: limit.or(total)?,
    })
}

fn read_number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn stat_value(path: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok()).flatten()
    })
}

fn meminfo_total(path: &Path) -> Option<u64> {
    status_kib(path, "MemTotal:").map(|k| k * 1024)
}

/// A `Name:   123 kB` line's number.
fn status_kib(path: &Path, name: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, path: &str, text: &str) {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn machine(root: &Path) {
        write(
            root,
            "proc/meminfo",
            "MemTotal:       16000000 kB\nMemFree: 1 kB\n",
        );
        write(
            root,
            "proc/self/status",
            "Name: trainer\nVmRSS:\t  400000 kB\n",
        );
    }

    #[test]
    fn a_v2_container_counts_its_working_set_against_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        machine(root);
        write(root, "proc/self/cgroup", "0::/\n");
        write(root, "sys/fs/cgroup/memory.current", "900\n");
        write(root, "sys/fs/cgroup/memory.max", "1000\n");
        write(
            root,
            "sys/fs/cgroup/memory.stat",
            "anon 700\ninactive_file 100\nactive_file 50\n",
        );
        let m = read_from(root).unwrap();
        assert_eq!((m.used, m.limit), (800, 1000));
        assert!((m.share() - 0.8).abs() < 1e-12);
        write(root, "sys/fs/cgroup/memory.max", "max\n");
        assert_eq!(
            read_from(root).unwrap().limit,
            16_000_000 * 1024,
            "no limit: the machine's"
        );
    }

    #[test]
    fn v1_and_no_cgroup_fall_back_in_turn() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        machine(root);
        write(
            root,
            "proc/self/cgroup",
            "12:cpu,cpuacct:/job\n4:memory:/job\n",
        );
        write(
            root,
            "sys/fs/cgroup/memory/job/memory.usage_in_bytes",
            "600\n",
        );
        write(
            root,
            "sys/fs/cgroup/memory/job/memory.limit_in_bytes",
            "9223372036854771712\n",
        );
        write(
            root,
            "sys/fs/cgroup/memory/job/memory.stat",
            "total_inactive_file 100\n",
        );
        let m = read_from(root).unwrap();
        assert_eq!((m.used, m.limit), (500, 16_000_000 * 1024));
        write(root, "proc/self/cgroup", "1:name=systemd:/\n");
        let m = read_from(root).unwrap();
        assert_eq!((m.used, m.limit), (400_000 * 1024, 16_000_000 * 1024));
        assert!(read_from(&root.join("nowhere")).is_none());
    }
}
