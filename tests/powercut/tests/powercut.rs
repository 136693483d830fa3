//! Power cuts: a child process ingests into a store on the power-cut file system
//! (`isovec_powercut::PowerCutFs`), and at a random moment the child is killed and everything
//! not fsynced is thrown away. After each cut the store is opened again and every acknowledged
//! document must be there, whole (text, metadata, vector), and found by dense, lexical and
//! hybrid search; every acknowledged delete must have stayed deleted; the one write in flight
//! at the cut may have happened or not, but wholly.
//!
//! The ingest mixes new documents, a sixth of them with texts over 128 KiB (so sled stores them
//! as blob files of their own), upserts of existing documents with new content, deletes (so
//! compactions run), and snapshots.
//!
//! The child is this test binary re-run with `ISOVEC_POWERCUT_CHILD=<store dir>`; it prints
//! `begin <op>` before each write and `ack <op>` once the write has returned. Cuts: 12 by
//! default, `ISOVEC_POWERCUT_CUTS` (CI runs 20, `scripts/soak.sh` more). With
//! `ISOVEC_POWERCUT_DURABILITY=flush` the child writes with `Durability::Flush` (sled's flush
//! alone, isovec's behaviour before fsync), which this test shows to lose documents.
//!
//! It needs root, /dev/fuse and FUSE mounts (the `fuse3` package); without them it fails when
//! `ISOVEC_REQUIRE_DATA=1` (CI) and is skipped, saying why, otherwise.

#[path = "../../common/mod.rs"]
mod common;

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use isovec::store::{Collection, Doc, Durability, SearchMode, SearchParams, Store};
use isovec_powercut::PowerCutFs;
use rand::{Rng, SeedableRng};
use serde_json::json;

const DIMS: usize = 64;
const CHILD_ENV: &str = "ISOVEC_POWERCUT_CHILD";
const RUN_ENV: &str = "ISOVEC_POWERCUT_RUN";
const CUTS_ENV: &str = "ISOVEC_POWERCUT_CUTS";
const DURABILITY_ENV: &str = "ISOVEC_POWERCUT_DURABILITY";
/// Live documents above which the child deletes more than it adds.
const LIVE_TARGET: usize = 120;
/// A word in every text, for the searches that must return every document.
const COMMON: &str = "powercut";

/// Whether version `ver` of a document has a text over 128 KiB (sled's blob threshold).
fn is_big(ver: u64) -> bool {
    ver.is_multiple_of(6)
}

/// The text of version `ver` of `id`: a word of its own (`w<ver>`), then filler.
fn text_of(id: &str, ver: u64) -> String {
    let mut s = format!("{COMMON} w{ver} document {id}");
    let len = if is_big(ver) { 140 * 1024 + (ver as usize % 50) * 1024 } else { 40 + (ver as usize % 200) };
    let mut x = ver.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!(" f{}", x % 5000));
    }
    s
}

fn metadata_of(id: &str, ver: u64) -> serde_json::Value {
    json!({"id": id, "ver": ver, "big": is_big(ver)})
}

fn vector_of(ver: u64) -> Vec<f32> {
    common::random_unit(ver.wrapping_add(0x5eed), DIMS)
}

fn doc_of(id: &str, ver: u64) -> Doc {
    Doc { id: id.to_string(), text: text_of(id, ver), metadata: metadata_of(id, ver), vector: vector_of(ver) }
}

/// One write: `put id ver id ver …` (one upsert batch) or `del id …`.
fn format_op(put: bool, items: &[(String, u64)]) -> String {
    let mut s = String::from(if put { "put" } else { "del" });
    for (id, ver) in items {
        s.push_str(&format!(" {id}"));
        if put {
            s.push_str(&format!(" {ver}"));
        }
    }
    s
}

/// The inverse of [`format_op`]: (id, Some(ver)) for a put, (id, None) for a delete.
fn parse_op(op: &str) -> Vec<(String, Option<u64>)> {
    let mut words = op.split(' ');
    let put = words.next() == Some("put");
    let words: Vec<&str> = words.collect();
    if put {
        words.chunks(2).map(|c| (c[0].to_string(), Some(c[1].parse().expect("a version")))).collect()
    } else {
        words.iter().map(|id| (id.to_string(), None)).collect()
    }
}

/// The ingest loop run by the child; does nothing in a normal test run.
#[test]
fn powercut_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let run: u64 = std::env::var(RUN_ENV).ok().and_then(|r| r.parse().ok()).unwrap_or(0);
    let durability = match std::env::var(DURABILITY_ENV).as_deref() {
        Ok("flush") => Durability::Flush,
        _ => Durability::Fsync,
    };
    let emb = common::BagOfWords::new(DIMS);
    let store = Store::open(&dir).expect("child opens the store").with_durability(durability);
    let c = store.get_or_create_collection("default", emb.config()).expect("collection");
    let mut live: Vec<String> = c.ids().expect("ids");
    let mut rng = rand::rngs::StdRng::seed_from_u64(run);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    for i in 0u64.. {
        // Versions are unique across runs: run * 1e6 + i * 8 + position in the batch.
        let ver0 = run * 1_000_000 + i * 8;
        let roll: f64 = rng.random();
        let delete_share = if live.len() > LIVE_TARGET { 0.5 } else { 0.2 };
        let (put, items): (bool, Vec<(String, u64)>) = if !live.is_empty() && roll < delete_share {
            let n = rng.random_range(1..=3.min(live.len()));
            let ids: Vec<(String, u64)> =
                (0..n).map(|_| live.swap_remove(rng.random_range(0..live.len()))).map(|id| (id, 0)).collect();
            (false, ids)
        } else if !live.is_empty() && roll < delete_share + 0.25 {
            // Upserts of existing documents with new content (and maybe a new document).
            let n = rng.random_range(1..=2.min(live.len()));
            let mut items: Vec<(String, u64)> =
                (0..n).map(|j| (live[rng.random_range(0..live.len())].clone(), ver0 + j as u64)).collect();
            items.sort();
            items.dedup_by(|a, b| a.0 == b.0);
            (true, items)
        } else {
            let n = rng.random_range(1..=3);
            (true, (0..n).map(|j| (format!("r{run}-{i}-{j}"), ver0 + j as u64)).collect())
        };
        let op = format_op(put, &items);
        writeln!(out, "begin {op}").unwrap();
        out.flush().unwrap();
        if put {
            let docs: Vec<Doc> = items.iter().map(|(id, ver)| doc_of(id, *ver)).collect();
            c.upsert(&docs).expect("upsert");
            for (id, _) in &items {
                if !live.contains(id) {
                    live.push(id.clone());
                }
            }
        } else {
            let ids: Vec<&str> = items.iter().map(|(id, _)| id.as_str()).collect();
            c.delete(&ids).expect("delete");
        }
        writeln!(out, "ack {op}").unwrap();
        out.flush().unwrap();
        if i % 20 == 19 {
            c.snapshot().expect("snapshot");
        }
    }
}

/// What one cut's check found wrong.
#[derive(Default)]
struct Faults {
    lost: Vec<String>,
    damaged: Vec<String>,
    resurrected: Vec<String>,
    torn: Vec<String>,
    unsearchable: Vec<String>,
}

impl Faults {
    fn total(&self) -> usize {
        self.lost.len() + self.damaged.len() + self.resurrected.len() + self.torn.len() + self.unsearchable.len()
    }
}

/// Checks the store against `model` (id → acknowledged version; None: acknowledged deleted);
/// the `in_flight` write may have happened or not, wholly. Brings `model` to what is stored.
fn check(
    c: &Collection,
    model: &mut HashMap<String, Option<u64>>,
    in_flight: Option<&str>,
    recent: &HashSet<String>,
    rng: &mut impl Rng,
) -> Faults {
    let mut f = Faults::default();
    let stored_ids: HashSet<String> = c.ids().expect("ids").into_iter().collect();
    let mut got: HashMap<String, Option<Doc>> = HashMap::new();
    let mut get =
        |id: &str| -> Option<Doc> { got.entry(id.to_string()).or_insert_with(|| c.get(id).expect("get")).clone() };
    // The write in flight: all of it or none of it.
    if let Some(op) = in_flight {
        let items = parse_op(op);
        let matches = |id: &str, want: Option<u64>, get: &mut dyn FnMut(&str) -> Option<Doc>| -> bool {
            match (get(id), want) {
                (None, None) => true,
                (Some(d), Some(v)) => d == doc_of(id, v),
                _ => false,
            }
        };
        let new = items.iter().all(|(id, v)| matches(id, *v, &mut get));
        let old = items.iter().all(|(id, _)| matches(id, model.get(id).copied().flatten(), &mut get));
        if new && !old {
            for (id, v) in &items {
                model.insert(id.clone(), *v);
            }
        } else if !old {
            f.torn.push(op.to_string());
        }
    }
    for (id, want) in model.iter() {
        match (get(id), want) {
            (None, Some(_)) => f.lost.push(id.clone()),
            (Some(_), None) => f.resurrected.push(id.clone()),
            (Some(d), Some(v)) if d != doc_of(id, *v) => {
                let want = doc_of(id, *v);
                let diff: Vec<&str> = [
                    ("text", d.text != want.text),
                    ("metadata", d.metadata != want.metadata),
                    ("vector", d.vector != want.vector),
                ]
                .iter()
                .filter(|(_, differs)| *differs)
                .map(|(what, _)| *what)
                .collect();
                f.damaged.push(format!("{id} (v{v}: {})", diff.join(", ")));
            }
            _ => {}
        }
    }
    // Lost documents are counted once, as lost, not again as unsearchable.
    let live: HashSet<String> =
        model.iter().filter(|(id, v)| v.is_some() && !f.lost.contains(*id)).map(|(id, _)| id.clone()).collect();
    let unexpected: Vec<&String> = stored_ids.difference(&live).filter(|id| !model.contains_key(*id)).collect();
    assert!(unexpected.is_empty(), "documents never written: {unexpected:?}");
    assert_eq!(c.count().expect("count"), stored_ids.len() as u64, "the count matches the stored documents");
    // Every stored document, by every mode at once (k above the count).
    let k = stored_ids.len() + 10;
    let q = vector_of(1);
    let dense: HashSet<String> = c.search(&q, &SearchParams::k(k)).expect("dense").into_iter().map(|h| h.id).collect();
    let lexical: HashSet<String> = c
        .search_lexical(COMMON, &SearchParams::k(k).with_mode(SearchMode::Lexical))
        .expect("lexical")
        .into_iter()
        .map(|h| h.id)
        .collect();
    let hybrid: HashSet<String> = c
        .search_hybrid(&q, COMMON, &SearchParams::k(k).with_mode(SearchMode::Hybrid))
        .expect("hybrid")
        .into_iter()
        .map(|h| h.id)
        .collect();
    for (mode, found) in [("dense", &dense), ("lexical", &lexical), ("hybrid", &hybrid)] {
        for id in live.difference(found) {
            f.unsearchable.push(format!("{id} (not among all by {mode})"));
        }
    }
    // Each document written since the last cut, and a sample of older ones, is the first hit
    // of its own vector, its own word, and both.
    let mut sample: Vec<&String> = live.iter().filter(|id| recent.contains(*id)).collect();
    let older: Vec<&String> = live.iter().filter(|id| !recent.contains(*id)).collect();
    for _ in 0..older.len().min(20) {
        sample.push(older[rng.random_range(0..older.len())]);
    }
    for id in sample {
        let Some(ver) = model[id] else { continue };
        if f.damaged.iter().any(|d| d.split(' ').next() == Some(id.as_str())) {
            continue;
        }
        let word = format!("w{ver}");
        let top = |hits: Vec<isovec::store::Hit>| hits.first().map(|h| h.id.clone());
        let by_vector = top(c.search(&vector_of(ver), &SearchParams::k(1)).expect("dense"));
        let by_word =
            top(c.search_lexical(&word, &SearchParams::k(1).with_mode(SearchMode::Lexical)).expect("lexical"));
        let by_both = top(c
            .search_hybrid(&vector_of(ver), &word, &SearchParams::k(1).with_mode(SearchMode::Hybrid))
            .expect("hybrid"));
        for (mode, hit) in [("dense", by_vector), ("lexical", by_word), ("hybrid", by_both)] {
            if hit.as_deref() != Some(id.as_str()) {
                f.unsearchable.push(format!("{id} (not first by {mode}: {hit:?})"));
            }
        }
    }
    // What is stored now is what the next cut is checked against.
    for id in &f.lost {
        model.insert(id.clone(), None);
    }
    for id in f.resurrected.iter().chain(&f.damaged) {
        let id = id.split(' ').next().unwrap_or(id);
        let ver = get(id).and_then(|d| d.metadata["ver"].as_u64());
        model.insert(id.to_string(), ver);
    }
    f
}

/// Why FUSE cannot be used here, if it cannot.
fn fuse_missing() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse (FUSE is not available on this machine)".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        && !["/usr/bin/fusermount3", "/bin/fusermount3"].iter().any(|p| Path::new(p).exists())
    {
        return Some("not root and no fusermount3 (install the fuse3 package)".into());
    }
    None
}

#[test]
fn acknowledged_writes_survive_power_cuts() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let cuts: usize = match std::env::var(CUTS_ENV) {
        Ok(n) => n.parse().unwrap_or_else(|_| panic!("{CUTS_ENV}={n:?} is not a number of cuts")),
        Err(_) => 12,
    };
    let mnt = tempfile::tempdir().unwrap();
    let mounted = match fuse_missing() {
        Some(why) => Err(why),
        None => PowerCutFs::mount(mnt.path()).map_err(|e| {
            format!(
                "mounting a FUSE file system on {} failed: {e} (it needs root, /dev/fuse and the fuse3 package)",
                mnt.path().display()
            )
        }),
    };
    let mut fs = match mounted {
        Ok(fs) => fs,
        Err(why) if std::env::var("ISOVEC_REQUIRE_DATA").as_deref() == Ok("1") => {
            panic!("the power-cut test needs FUSE: {why}")
        }
        Err(why) => {
            eprintln!("skipped: acknowledged_writes_survive_power_cuts: the power-cut test needs FUSE: {why}");
            return;
        }
    };
    let store_dir = mnt.path().join("store");
    let mut model: HashMap<String, Option<u64>> = HashMap::new();
    // The cut moments; ISOVEC_POWERCUT_SEED repeats a run's (the children's writes are the same
    // for every seed; where a cut lands still depends on timing).
    let seed: u64 =
        std::env::var("ISOVEC_POWERCUT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| rand::rng().random());
    eprintln!("power cuts: seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let (mut acks, mut faults, mut faulty_cuts, mut big) = (0usize, Faults::default(), 0usize, 0usize);
    let mut ops = HashMap::<&str, usize>::new();
    for run in 0..cuts {
        let mut child = common::ChildRun::spawn(
            "powercut_child",
            &[(CHILD_ENV, store_dir.as_os_str()), (RUN_ENV, run.to_string().as_ref())],
        );
        // One cut in ten lands while the child opens the store (recovery writes too); the
        // others at a random moment of its ingest.
        if run % 10 == 9 {
            std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        } else {
            child.wait_ready(Duration::from_secs(120), &format!("run {run}"));
            std::thread::sleep(Duration::from_millis(rng.random_range(20..600)));
        }
        let lines = child.kill(); // SIGKILL
        fs.cut(Duration::from_secs(20)).unwrap_or_else(|e| panic!("run {run}: the cut failed: {e}"));

        // The acknowledged writes, in order, and the one in flight.
        let mut in_flight = None;
        let mut recent = HashSet::new();
        for l in &lines {
            if let Some(op) = l.strip_prefix("begin ") {
                in_flight = Some(op.to_string());
            } else if let Some(op) = l.strip_prefix("ack ") {
                in_flight = None;
                acks += 1;
                *ops.entry(if op.starts_with("put") { "put" } else { "del" }).or_default() += 1;
                for (id, ver) in parse_op(op) {
                    big += ver.is_some_and(is_big) as usize;
                    recent.insert(id.clone());
                    model.insert(id, ver);
                }
            }
        }
        // sled itself may panic on a log damaged by a cut (it does with Durability::Flush).
        let opened = std::panic::catch_unwind(|| Store::open(&store_dir));
        let live_now = model.values().filter(|v| v.is_some()).count();
        let store = match opened {
            Ok(Ok(store)) => store,
            Ok(Err(e)) => panic!("run {run}: the store does not open after the cut ({live_now} acknowledged documents in it): {e}"),
            Err(_) => panic!("run {run}: the store does not open after the cut ({live_now} acknowledged documents in it): sled panicked (above)"),
        };
        // A panic below (sled's, on a tree it recovered wrong) names the cut it followed.
        let opened = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.collection("default")));
        let opened = opened.unwrap_or_else(|_| {
            panic!("run {run}: opening the collection after the cut panicked (above; seed {seed}, {live_now} acknowledged documents)")
        });
        let c = match opened {
            Ok(c) => c,
            // A cut before the collection was ever acknowledged.
            Err(_) if model.is_empty() => continue,
            // The collection itself was lost: every acknowledged document with it.
            Err(e) => {
                let lost: Vec<String> = model.drain().filter(|(_, v)| v.is_some()).map(|(id, _)| id).collect();
                faulty_cuts += 1;
                eprintln!("run {run}: {} lost (the whole collection: {e})", lost.len());
                faults.lost.extend(lost);
                continue;
            }
        };
        let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            check(&c, &mut model, in_flight.as_deref(), &recent, &mut rng)
        }));
        let f = checked.unwrap_or_else(|_| {
            panic!("run {run}: checking the store after the cut panicked (above; seed {seed}, {live_now} acknowledged documents)")
        });
        if f.total() > 0 {
            faulty_cuts += 1;
            eprintln!(
                "run {run}: {} lost, {} damaged, {} deletes undone, {} torn writes, {} unsearchable: lost {:?} damaged {:?} undone {:?} torn {:?} unsearchable {:?}",
                f.lost.len(),
                f.damaged.len(),
                f.resurrected.len(),
                f.torn.len(),
                f.unsearchable.len(),
                &f.lost[..f.lost.len().min(5)],
                &f.damaged[..f.damaged.len().min(5)],
                &f.resurrected[..f.resurrected.len().min(5)],
                &f.torn[..f.torn.len().min(2)],
                &f.unsearchable[..f.unsearchable.len().min(5)],
            );
        }
        faults.lost.extend(f.lost);
        faults.damaged.extend(f.damaged);
        faults.resurrected.extend(f.resurrected);
        faults.torn.extend(f.torn);
        faults.unsearchable.extend(f.unsearchable);
        drop(c);
        drop(store);
    }
    let live = model.values().filter(|v| v.is_some()).count();
    let summary = format!(
        "{cuts} cuts, {acks} acknowledged writes ({} upserts, {} deletes; {} documents, {big} of them over 128 KiB), {live} live at the end; {} lost, {} damaged, {} deletes undone, {} torn, {} unsearchable ({faulty_cuts} faulty cuts); {} fsyncs; {:.1?}",
        ops.get("put").copied().unwrap_or(0),
        ops.get("del").copied().unwrap_or(0),
        model.len(),
        faults.lost.len(),
        faults.damaged.len(),
        faults.resurrected.len(),
        faults.torn.len(),
        faults.unsearchable.len(),
        fs.syncs(),
        started.elapsed(),
    );
    eprintln!("{summary}");
    assert!(acks > 10 * cuts.min(10), "the children acknowledged only {acks} writes: {summary}");
    assert!(big > 0, "no document over 128 KiB was acknowledged: {summary}");
    // The big texts took sled's blob path (the one whose files sled never fsyncs).
    if model.values().any(|v| v.is_some_and(is_big)) {
        let blobs = std::fs::read_dir(store_dir.join("sled/blobs")).map(|d| d.count()).unwrap_or(0);
        assert!(blobs > 0, "live documents over 128 KiB but no file in sled/blobs: {summary}");
    }
    assert_eq!(faults.total(), 0, "acknowledged writes were lost or damaged by power cuts: {summary}");
}
