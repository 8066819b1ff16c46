//! Group commit of feature-storage writes (`store/batch.rs`), on a SQLite file and on
//! Postgres: concurrent writes are all kept and quotas stay exact, writes really share
//! commits, one failing write does not fail its neighbours, and a process killed
//! mid-batch leaves exactly what it acknowledged.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use townes::grants::Quota;
use townes::store::{Scope, Store, StoreError, Usage};
use townes_limits::storage::{board_row_bytes, kv_row_bytes};

use common::each_backend;

const ROOMY: Quota = Quota {
    max_bytes: 1 << 30,
    max_rows: 1_000_000,
};

/// The usage that a scope's stored rows add up to (`boards`: every board it has).
async fn recomputed(store: &Store, s: &Scope, boards: &[&str]) -> Usage {
    let mut usage = Usage::default();
    for (key, value) in store.kv_list(s, "", u32::MAX).await.unwrap() {
        usage.bytes += kv_row_bytes(&key, &value);
        usage.rows += 1;
    }
    for board in boards {
        let entries = store.board_top(s, board, u32::MAX).await.unwrap();
        usage.bytes += board_row_bytes(board) * entries.len() as u64;
        usage.rows += entries.len() as u64;
    }
    usage
}

/// 500 concurrent callers over four scopes, mixing every kind of write: each answered
/// write is there afterwards, increments add up exactly, and each scope's usage row
/// equals what its rows add up to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_are_all_kept_and_usage_is_exact() {
    for (label, store, _guard) in each_backend().await {
        let scopes = [
            Scope::new(1, "a"),
            Scope::new(1, "b"),
            Scope::new(2, "a"),
            Scope::new(3, "c"),
        ];
        let tasks: Vec<_> = (0..500u64)
            .map(|i| {
                let store = store.clone();
                let s = scopes[i as usize % scopes.len()].clone();
                tokio::spawn(async move {
                    match i % 5 {
                        0 => store
                            .kv_set(&s, &format!("k{i}"), &"v".repeat(i as usize % 7), ROOMY)
                            .await
                            .unwrap(),
                        1 => {
                            store
                                .kv_increment(&s, "counter", i as i64, ROOMY)
                                .await
                                .unwrap();
                        }
                        2 => {
                            store
                                .board_increment(&s, "xp", i % 10, 1, ROOMY)
                                .await
                                .unwrap();
                        }
                        3 => store
                            .board_set(&s, "set", i, i as i64, ROOMY)
                            .await
                            .unwrap(),
                        _ => {
                            let key = format!("d{i}");
                            store.kv_set(&s, &key, "gone soon", ROOMY).await.unwrap();
                            assert!(store.kv_delete(&s, &key).await.unwrap());
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }

        for (n, s) in scopes.iter().enumerate() {
            let count = scopes.len();
            let mine = || (0..500u64).filter(move |i| *i as usize % count == n);
            let mut xp: HashMap<u64, i64> = HashMap::new();
            let mut counter = 0;
            for i in mine() {
                match i % 5 {
                    0 => assert_eq!(
                        store.kv_get(s, &format!("k{i}")).await.unwrap(),
                        Some("v".repeat(i as usize % 7)),
                        "{label}"
                    ),
                    1 => counter += i as i64,
                    2 => *xp.entry(i % 10).or_default() += 1,
                    3 => assert_eq!(
                        store
                            .board_rank(s, "set", i)
                            .await
                            .unwrap()
                            .map(|e| e.score),
                        Some(i as i64),
                        "{label}"
                    ),
                    _ => assert_eq!(
                        store.kv_get(s, &format!("d{i}")).await.unwrap(),
                        None,
                        "{label}"
                    ),
                }
            }
            assert_eq!(
                store.kv_get(s, "counter").await.unwrap(),
                Some(counter.to_string()),
                "{label}"
            );
            for (subject, score) in xp {
                assert_eq!(
                    store
                        .board_rank(s, "xp", subject)
                        .await
                        .unwrap()
                        .map(|e| e.score),
                    Some(score),
                    "{label}"
                );
            }
            assert_eq!(
                store.storage_usage(s).await.unwrap(),
                recomputed(&store, s, &["xp", "set"]).await,
                "{label} {s:?}"
            );
        }
    }
}

/// A quota of N rows and 5N concurrent writers of distinct keys: exactly N succeed,
/// the others are refused for quota, and exactly N rows are stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_is_exact_under_concurrency() {
    const N: u64 = 30;
    for (label, store, _guard) in each_backend().await {
        let s = Scope::new(5, "tight");
        let q = Quota {
            max_bytes: 1 << 20,
            max_rows: N,
        };
        let tasks: Vec<_> = (0..5 * N)
            .map(|i| {
                let (store, s) = (store.clone(), s.clone());
                tokio::spawn(async move {
                    // Boards count against the same quota as keys.
                    let written = if i % 2 == 0 {
                        store.kv_set(&s, &format!("k{i}"), "value", q).await
                    } else {
                        store.board_set(&s, "b", i, 1, q).await
                    };
                    match written {
                        Ok(()) => true,
                        Err(StoreError::QuotaExceeded(_)) => false,
                        Err(other) => panic!("{other}"),
                    }
                })
            })
            .collect();
        let mut succeeded = 0;
        for task in tasks {
            succeeded += u64::from(task.await.unwrap());
        }
        assert_eq!(succeeded, N, "{label}");
        let usage = recomputed(&store, &s, &["b"]).await;
        assert_eq!(usage.rows, N, "{label}");
        assert_eq!(store.storage_usage(&s).await.unwrap(), usage, "{label}");
    }
}

/// 200 concurrent writers share far fewer commits than 200; a lone writer still
/// commits each write at once. The process-wide histogram counts the commits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_share_commits() {
    for (label, store, _guard) in each_backend().await {
        let before = store.storage_commits();
        let tasks: Vec<_> = (0..200u64)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let s = Scope::new(10 + i % 8, "grouped");
                    store.kv_increment(&s, "n", 1, ROOMY).await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let after = store.storage_commits();
        let (commits, writes) = (after.commits - before.commits, after.writes - before.writes);
        eprintln!("{label}: 200 concurrent writes in {commits} commits");
        assert_eq!(writes, 200, "{label}");
        assert!(commits * 4 <= writes, "{label}: {commits} commits");

        let before = store.storage_commits();
        for i in 0..10 {
            store
                .kv_set(&Scope::new(10, "alone"), "k", &i.to_string(), ROOMY)
                .await
                .unwrap();
        }
        let after = store.storage_commits();
        assert_eq!(after.commits - before.commits, 10, "{label}");
        assert_eq!(after.writes - before.writes, 10, "{label}");
    }
    let histogram = townes::metrics::metrics().render();
    let commits = histogram
        .lines()
        .find_map(|l| l.strip_prefix("townes_storage_batch_writes_count "))
        .expect("the histogram is rendered");
    assert!(commits.parse::<f64>().unwrap() >= 2.0, "{histogram}");
}

/// A write the database rejects (on Postgres, a key too long for its index) fails
/// alone: the writes committed in the same batch succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_does_not_fail_its_neighbours() {
    for (label, store, _guard) in each_backend().await {
        let s = Scope::new(20, "neighbours");
        // Random text does not compress below Postgres' 2,704-byte index entry limit.
        // Its fixed prefix keeps it out of the `k…` keys counted below (on SQLite,
        // where it is stored, a random first letter `k` made this test flaky).
        let huge: String = "huge-"
            .chars()
            .chain((0..20_000).map(|_| char::from(b'a' + rand::random::<u8>() % 26)))
            .collect();
        let tasks: Vec<_> = (0..60u64)
            .map(|i| {
                let (store, s, huge) = (store.clone(), s.clone(), huge.clone());
                tokio::spawn(async move {
                    let key = if i == 30 { huge } else { format!("k{i}") };
                    store.kv_set(&s, &key, "v", ROOMY).await
                })
            })
            .collect();
        for (i, task) in tasks.into_iter().enumerate() {
            let written = task.await.unwrap();
            match (i, label.as_str()) {
                (30, "postgres") => assert!(
                    matches!(written, Err(StoreError::Database(_))),
                    "{label}: {written:?}"
                ),
                _ => written.unwrap(),
            }
        }
        let stored = store.kv_list(&s, "k", 100).await.unwrap().len();
        assert_eq!(stored, 59, "{label}");
        assert_eq!(
            store.storage_usage(&s).await.unwrap(),
            recomputed(&store, &s, &[]).await,
            "{label}"
        );
    }
}

/// Tells [`crash_child`] which database to write to (and that it is the child).
const CHILD_DATABASE: &str = "TOWNES_GROUP_COMMIT_CHILD_DATABASE";
const WORKERS: u64 = 32;
/// Fewer rows than the workers want at once, so sets are refused all along.
const CRASH_QUOTA: Quota = Quota {
    max_bytes: 1 << 20,
    max_rows: 40,
};

fn kv_scope() -> Scope {
    Scope::new(30, "crash-kv")
}

fn count_scope() -> Scope {
    Scope::new(30, "crash-count")
}

/// Prints one line of the child's log, flushed before anything else happens.
fn say(line: String) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

/// The child of [`a_process_killed_mid_batch_keeps_what_it_acknowledged`]: workers
/// write concurrently until killed, each logging `T <worker> <op> <n>` before a
/// write and `A <worker> <op> <n> ok|refused` after its answer. Per worker, round n:
/// set key `k<w>.<n>` to `v<w>.<n>` under [`CRASH_QUOTA`]; delete `k<w>.<n-2>`;
/// increment counter `n`; increment the worker's score on board `b`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "run by a_process_killed_mid_batch_keeps_what_it_acknowledged"]
async fn crash_child() {
    let Ok(url) = std::env::var(CHILD_DATABASE) else {
        return;
    };
    let store = Store::connect(&url).await.unwrap();
    // Bounded, in case nobody kills it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let (kv, counts) = (kv_scope(), count_scope());
                for n in 0u64.. {
                    if Instant::now() > deadline {
                        break;
                    }
                    say(format!("T {w} set {n}"));
                    let set = store
                        .kv_set(&kv, &format!("k{w}.{n}"), &format!("v{w}.{n}"), CRASH_QUOTA)
                        .await;
                    let result = match set {
                        Ok(()) => "ok",
                        Err(StoreError::QuotaExceeded(_)) => "refused",
                        Err(other) => panic!("{other}"),
                    };
                    say(format!("A {w} set {n} {result}"));
                    if let Some(old) = n.checked_sub(2) {
                        say(format!("T {w} del {old}"));
                        store.kv_delete(&kv, &format!("k{w}.{old}")).await.unwrap();
                        say(format!("A {w} del {old} ok"));
                    }
                    say(format!("T {w} inc {n}"));
                    store.kv_increment(&counts, "n", 1, ROOMY).await.unwrap();
                    say(format!("A {w} inc {n} ok"));
                    say(format!("T {w} board {n}"));
                    store
                        .board_increment(&counts, "b", w, 1, ROOMY)
                        .await
                        .unwrap();
                    say(format!("A {w} board {n} ok"));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.unwrap();
    }
}

/// What the parent learnt from the child's log.
#[derive(Default)]
struct Log {
    answers: usize,
    /// (worker, n) of sets answered ok, and of those refused.
    set_ok: HashSet<(u64, u64)>,
    set_refused: HashSet<(u64, u64)>,
    /// (worker, n) of the keys whose delete was answered.
    deleted: HashSet<(u64, u64)>,
    increments: i64,
    /// Board increments answered, per worker.
    board: HashMap<u64, i64>,
    /// Each worker's write in flight when the log ended: (op, n).
    in_flight: HashMap<u64, (String, u64)>,
}

impl Log {
    fn read(&mut self, line: &str) {
        let words: Vec<&str> = line.split(' ').collect();
        let (w, n) = match words.as_slice() {
            [_, w, _, n, ..] => match (w.parse::<u64>(), n.parse::<u64>()) {
                (Ok(w), Ok(n)) => (w, n),
                _ => return,
            },
            // Test harness output, or a line cut short by the kill.
            _ => return,
        };
        match words.as_slice() {
            ["T", _, op, _] => {
                self.in_flight.insert(w, (op.to_string(), n));
            }
            ["A", _, op, _, result] => {
                self.in_flight.remove(&w);
                self.answers += 1;
                match (*op, *result) {
                    ("set", "ok") => {
                        self.set_ok.insert((w, n));
                    }
                    ("set", "refused") => {
                        self.set_refused.insert((w, n));
                    }
                    ("del", _) => {
                        self.deleted.insert((w, n));
                    }
                    ("inc", _) => self.increments += 1,
                    ("board", _) => *self.board.entry(w).or_default() += 1,
                    _ => panic!("unexpected line {line:?}"),
                }
            }
            _ => {}
        }
    }

    /// Whether worker `w`'s write in flight is `op` (on round or key `n`, if given).
    fn pending(&self, w: u64, op: &str, n: Option<u64>) -> bool {
        self.in_flight
            .get(&w)
            .is_some_and(|(o, m)| o == op && n.is_none_or(|n| n == *m))
    }
}

/// Kills (SIGKILL) a process writing through many concurrent callers once it has
/// logged a few hundred answers, then checks the database: every write answered ok
/// is there, no refused write is, writes in flight are all-or-nothing, and the usage
/// rows equal what the stored rows add up to (so the quota is still exact).
#[tokio::test]
async fn a_process_killed_mid_batch_keeps_what_it_acknowledged() {
    for (label, _store, guard) in each_backend().await {
        // On Postgres the guard's URL names a schema of this test's own.
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "crash_child", "--ignored", "--nocapture"])
            .env(CHILD_DATABASE, guard.url())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut log = Log::default();
        while log.answers < 600 {
            let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
                .await
                .expect("the child answers")
                .unwrap()
                .expect("the child runs until killed");
            log.read(&line);
        }
        child.kill().await.unwrap();
        // What it wrote before it died.
        while let Some(line) = lines.next_line().await.unwrap() {
            log.read(&line);
        }
        assert!(
            !log.set_ok.is_empty() && !log.set_refused.is_empty(),
            "{label}: {} ok, {} refused",
            log.set_ok.len(),
            log.set_refused.len()
        );

        let store = Store::connect(guard.url()).await.unwrap();
        let (kv, counts) = (kv_scope(), count_scope());
        let stored: HashMap<String, String> = store
            .kv_list(&kv, "", u32::MAX)
            .await
            .unwrap()
            .into_iter()
            .collect();
        let answered = log.set_ok.iter().chain(&log.set_refused).copied();
        let in_flight = log.in_flight.iter().map(|(&w, (_, n))| (w, *n));
        for (w, n) in answered.chain(in_flight) {
            let key = format!("k{w}.{n}");
            if log.pending(w, "set", Some(n)) || log.pending(w, "del", Some(n)) {
                continue; // either way
            }
            let expected = (log.set_ok.contains(&(w, n)) && !log.deleted.contains(&(w, n)))
                .then(|| format!("v{w}.{n}"));
            assert_eq!(stored.get(&key), expected.as_ref(), "{label}: {key}");
        }
        for key in stored.keys() {
            let (w, n) = key[1..].split_once('.').unwrap();
            let (w, n) = (w.parse().unwrap(), n.parse().unwrap());
            assert!(
                log.set_ok.contains(&(w, n)) || log.pending(w, "set", Some(n)),
                "{label}: {key} was never acknowledged"
            );
        }
        assert!(stored.len() as u64 <= CRASH_QUOTA.max_rows, "{label}");

        let counter: i64 = store
            .kv_get(&counts, "n")
            .await
            .unwrap()
            .map_or(0, |n| n.parse().unwrap());
        let incrementing = (0..WORKERS)
            .filter(|&w| log.pending(w, "inc", None))
            .count();
        assert!(
            (log.increments..=log.increments + incrementing as i64).contains(&counter),
            "{label}: counter {counter}, {} answered, {incrementing} in flight",
            log.increments
        );
        for w in 0..WORKERS {
            let answered = log.board.get(&w).copied().unwrap_or(0);
            let in_flight = i64::from(log.pending(w, "board", None));
            let score = store
                .board_rank(&counts, "b", w)
                .await
                .unwrap()
                .map_or(0, |e| e.score);
            assert!(
                (answered..=answered + in_flight).contains(&score),
                "{label}: worker {w} scored {score}, {answered} answered"
            );
        }

        for (s, boards) in [(&kv, &[][..]), (&counts, &["b"][..])] {
            assert_eq!(
                store.storage_usage(s).await.unwrap(),
                recomputed(&store, s, boards).await,
                "{label} {s:?}"
            );
        }
        eprintln!(
            "{label}: killed after {} answers ({} sets ok, {} refused, {} in flight)",
            log.answers,
            log.set_ok.len(),
            log.set_refused.len(),
            log.in_flight.len()
        );
    }
}
