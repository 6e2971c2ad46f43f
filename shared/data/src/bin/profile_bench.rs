//! Benchmark of read + infer + apply + profile on a generated mixed-type table (issue 5's
//! goal: 1,000,000 rows × 20 columns of CSV in under 3 s and 1.5 GB peak RSS, release build).
//!
//! `cargo run --release -p synth-data --bin profile_bench [-- ROWS [XLSX_ROWS]]`; the
//! steps run alone with `-- --generate FILE.csv ROWS` and `-- --measure FILE`.
//!
//! Each file is profiled in a child process of its own so that its peak RSS (VmHWM) is not
//! mixed with generating the data or with the other formats.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use synth_data::{
    LoadOptions, Loaded, ReadOptions, Source, apply_metadata, infer_metadata, load, profile,
    read_path, write_path,
};

/// xorshift64*: enough randomness for a benchmark, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const HEADER: &str = "id,age,quantity,price_cents,visits,score,weight,ratio,temperature,balance,\
city,segment,channel,active,signup_date,last_seen,email,comment,tier,phone";

/// The text of column `c` in row `i` of the generated table.
fn write_cell(cell: &mut String, c: usize, i: usize, rng: &mut Rng) {
    use std::fmt::Write as _;
    let cities = [
        "Paris", "Lyon", "Nice", "Lille", "Nantes", "Bordeaux", "Rennes", "Metz",
    ];
    let segments = ["retail", "wholesale", "online", "partner"];
    let channels = ["web", "app", "store"];
    let words = [
        "fast", "late", "broken", "great", "refund", "support", "thanks", "again",
    ];
    let _ = match c {
        0 => write!(cell, "{}", i + 1),
        1 => write!(cell, "{}", 18 + rng.below(70)),
        2 => write!(cell, "{}", rng.below(500)),
        3 => write!(cell, "{}", 100 + rng.below(1_000_000)),
        4 => write!(cell, "{}", rng.below(10_000)),
        5 => write!(cell, "{:.3}", rng.unit() * 100.0),
        6 => write!(cell, "{:.2}", 40.0 + rng.unit() * 80.0),
        7 => write!(cell, "{:.4}", rng.unit()),
        8 => write!(cell, "{:.1}", -10.0 + rng.unit() * 45.0),
        9 => write!(cell, "{:.2}", (rng.unit() - 0.3) * 1e5),
        10 => write!(cell, "{}", cities[rng.below(8) as usize]),
        11 => write!(cell, "{}", segments[rng.below(4) as usize]),
        12 => write!(cell, "{}", channels[rng.below(3) as usize]),
        13 => write!(cell, "{}", rng.below(2) == 0),
        14 => write!(
            cell,
            "{}-{:02}-{:02}",
            2015 + rng.below(10),
            1 + rng.below(12),
            1 + rng.below(28)
        ),
        15 => write!(
            cell,
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}",
            1 + rng.below(12),
            1 + rng.below(28),
            rng.below(24),
            rng.below(60),
            rng.below(60)
        ),
        16 => write!(cell, "user{}@example.com", i + 1),
        17 => write!(
            cell,
            "\"{} {}, {} {}\"",
            words[rng.below(8) as usize],
            words[rng.below(8) as usize],
            words[rng.below(8) as usize],
            rng.below(1000)
        ),
        18 => write!(cell, "{}", 1 + rng.below(5)),
        _ => write!(
            cell,
            "+33 6 {:02} {:02} {:02} {:02}",
            rng.below(100),
            rng.below(100),
            rng.below(100),
            rng.below(100)
        ),
    };
}

fn generate_csv(path: &Path, rows: usize) -> std::io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut cell = String::with_capacity(64);
    for i in 0..rows {
        for c in 0..20 {
            if c > 0 {
                out.write_all(b",")?;
            }
            // 5% missing everywhere but the key, in the null spellings users send.
            if c > 0 && rng.below(20) == 0 {
                out.write_all([&b""[..], b"NA", b"null"][rng.below(3) as usize])?;
                continue;
            }
            cell.clear();
            write_cell(&mut cell, c, i, &mut rng);
            out.write_all(cell.as_bytes())?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system, all threads) this process has used: on a shared, busy machine
/// this moves less than wall time does.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / 100.0
}

/// Child: time each phase of [`load`] on one file (called one by one, to time them apart)
/// and print one result line.
fn measure(path: &Path) {
    let opts = ReadOptions::default();
    let cpu0 = cpu_secs();
    let t0 = Instant::now();
    let ds = read_path(path, &opts).expect("read");
    let t1 = Instant::now();
    let inference = infer_metadata(&ds.table);
    let t2 = Instant::now();
    let table = apply_metadata(ds.table, &inference.metadata).expect("apply");
    let t3 = Instant::now();
    let p = profile(&table, &inference.metadata, Some(&inference));
    let t4 = Instant::now();
    let secs = |a: Instant, b: Instant| (b - a).as_secs_f64();
    println!(
        "{:<8} {:>9} rows {:>8.1} MB | read {:>6.2}s  infer {:>5.2}s  apply {:>5.2}s  profile {:>5.2}s | total {:>6.2}s wall, {:>6.2}s CPU | peak RSS {:>7.0} MB",
        ds.format.extension(),
        p.n_rows,
        std::fs::metadata(path).map_or(0.0, |m| m.len() as f64 / 1e6),
        secs(t0, t1),
        secs(t1, t2),
        secs(t2, t3),
        secs(t3, t4),
        secs(t0, t4),
        cpu_secs() - cpu0,
        peak_rss_mb(),
    );
    let sdtypes: Vec<String> = inference
        .columns
        .iter()
        .map(|c| {
            format!(
                "{}={}",
                c.name,
                serde_json::to_value(c.sdtype).unwrap_or_default()
            )
        })
        .collect();
    println!("  sdtypes: {}", sdtypes.join(" "));
}

/// Child: read a CSV (first `rows` rows) and write it as another format, outside the timings.
fn convert(from: &Path, to: &Path, rows: usize) {
    let Loaded {
        mut table,
        metadata,
        ..
    } = load(Source::Path(from), &LoadOptions::default()).expect("load");
    for c in &mut table.columns {
        use synth_table::ColumnData::*;
        match &mut c.data {
            Float(v) => v.truncate(rows),
            Int(v) | Datetime(v) => v.truncate(rows),
            Bool(v) => v.truncate(rows),
            Str(v) => v.truncate(rows),
        }
    }
    write_path(&table, &metadata, to).expect("write");
}

fn child(args: &[&str]) {
    let exe = std::env::current_exe().expect("own path");
    let status = Command::new(exe).args(args).status().expect("spawn");
    assert!(status.success(), "child {args:?} failed");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--measure") => return measure(Path::new(&args[1])),
        Some("--generate") => {
            return generate_csv(Path::new(&args[1]), args[2].parse().unwrap()).expect("generate");
        }
        Some("--convert") => {
            return convert(
                Path::new(&args[1]),
                Path::new(&args[2]),
                args[3].parse().unwrap(),
            );
        }
        _ => {}
    }
    let rows: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let xlsx_rows: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("synth-profile-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let csv = dir.join("bench.csv");
    let t = Instant::now();
    generate_csv(&csv, rows).expect("generate");
    println!(
        "generated {rows} rows × 20 columns in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        csv.display()
    );
    let parquet = dir.join("bench.parquet");
    let xlsx = dir.join("bench.xlsx");
    let s = |p: &Path| p.to_string_lossy().into_owned();
    child(&["--convert", &s(&csv), &s(&parquet), &rows.to_string()]);
    child(&["--convert", &s(&csv), &s(&xlsx), &xlsx_rows.to_string()]);
    for path in [&csv, &parquet, &xlsx] {
        child(&["--measure", &s(path)]);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
