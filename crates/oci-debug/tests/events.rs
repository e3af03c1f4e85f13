//! What the traces say: a capturing subscriber records the events of a
//! push, a pull, an upload and a listing.

use std::io;
use std::sync::{Arc, Mutex};

use oci_core::registry::{bytes_stream, collect_list};
use oci_core::testkit::forwarding::{ALL_CALLS, Recorder, lost_calls};
use oci_core::testkit::random_bytes;
use oci_core::{Digest, ListOptions, Registry, RepoName, Tag};
use oci_debug::Traced;
use oci_mem::MemRegistry;
use tracing::Level;

/// One test of this file at a time: tracing caches whether a call site is
/// of interest when it first fires, and a test that fires one without a
/// DEBUG subscriber while another installs its own can leave that cache
/// saying "never" for the other (seen as a missing event, once in a few
/// runs).
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

/// Everything the subscriber writes, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Installs a subscriber at `level` writing here, for this thread.
    fn install(&self, level: Level) -> tracing::subscriber::DefaultGuard {
        let out = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn lines(&self) -> Vec<String> {
        let bytes = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// The one line of this crate's events that contains every one of
    /// `parts`.
    fn line_with(&self, parts: &[&str]) -> String {
        let lines = self.lines();
        let found: Vec<_> = lines
            .iter()
            .filter(|l| l.contains(" oci_debug: ") && parts.iter().all(|p| l.contains(p)))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "lines with {parts:?} in:\n{}",
            lines.join("\n")
        );
        found[0].clone()
    }
}

fn name<T: std::str::FromStr>(s: &str) -> T
where
    T::Err: std::fmt::Display,
{
    s.parse().unwrap_or_else(|e| panic!("bad name {s}: {e}"))
}

#[tokio::test]
async fn a_push_and_a_pull_name_method_repo_digest_outcome_and_bytes() {
    let _serial = one_at_a_time().await;
    let captured = Captured::default();
    let _guard = captured.install(Level::DEBUG);
    let reg = Traced::new(Arc::new(MemRegistry::new()));
    let repo: RepoName = name("team/app");
    let data = random_bytes(5000);
    let digest = Digest::sha256(&data);

    reg.push_blob(&repo, &digest, Some(5000), bytes_stream(data.clone(), 1000))
        .await
        .unwrap();
    let read = reg
        .get_blob(&repo, &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(read, data);
    let missing = Digest::sha256(b"missing");
    assert!(reg.get_blob(&repo, &missing).await.is_err());

    let digest_field = format!("digest={digest}");
    let push = captured.line_with(&["push_blob", "repo=team/app", &digest_field]);
    assert!(push.contains("DEBUG"), "{push}");
    assert!(push.contains("outcome=\"ok\""), "{push}");
    assert!(push.contains("bytes=5000"), "{push}");
    assert!(push.contains("elapsed="), "{push}");

    let pulled = captured.line_with(&["get_blob", "blob stream end", &digest_field]);
    assert!(pulled.contains("bytes=5000"), "{pulled}");
    assert!(pulled.contains("outcome=\"ok\""), "{pulled}");

    let failed = captured.line_with(&["get_blob", &format!("digest={missing}")]);
    assert!(failed.contains("outcome=\"BLOB_UNKNOWN\""), "{failed}");
    assert!(failed.contains("error="), "{failed}");
}

#[tokio::test]
async fn uploads_report_each_write_and_the_commit() {
    let _serial = one_at_a_time().await;
    let captured = Captured::default();
    let _guard = captured.install(Level::TRACE);
    let reg = Traced::new(Arc::new(MemRegistry::new()));
    let repo: RepoName = name("app");
    let data = random_bytes(3000);
    let mut writer = reg.push_blob_chunked(&repo).await.unwrap();
    writer.write(data.slice(..1000)).await.unwrap();
    writer.write(data.slice(1000..)).await.unwrap();
    writer.commit(&Digest::sha256(&data)).await.unwrap();

    let lines = captured.lines();
    let writes = lines.iter().filter(|l| l.contains("upload write")).count();
    assert_eq!(writes, 2, "{}", lines.join("\n"));
    captured.line_with(&["TRACE", "upload write", "offset=1000", "bytes=2000"]);
    let commit = captured.line_with(&["upload commit", "repo=app"]);
    assert!(commit.contains("bytes=3000"), "{commit}");
    assert!(commit.contains("outcome=\"ok\""), "{commit}");
}

#[tokio::test]
async fn listings_report_items_and_their_count() {
    let _serial = one_at_a_time().await;
    let captured = Captured::default();
    let _guard = captured.install(Level::TRACE);
    let inner = Arc::new(MemRegistry::new());
    let repo: RepoName = name("app");
    let image = oci_core::testkit::push_image(inner.as_ref(), &repo, None).await;
    let tags: Vec<Tag> = ["one", "two"].iter().map(|t| name(t)).collect();
    inner
        .push_manifest(&repo, &image.manifest, &tags)
        .await
        .unwrap();

    let reg = Traced::new(inner);
    let listed = collect_list(reg.tags(&repo, &ListOptions::all()))
        .await
        .unwrap();
    assert_eq!(listed, tags);
    captured.line_with(&["TRACE", "listed", "item=one"]);
    captured.line_with(&["TRACE", "listed", "item=two"]);
    let end = captured.line_with(&["listing end", "tags"]);
    assert!(end.contains("items=2"), "{end}");
}

#[tokio::test]
async fn nothing_is_written_when_debug_is_off() {
    let _serial = one_at_a_time().await;
    let captured = Captured::default();
    let _guard = captured.install(Level::INFO);
    let reg = Traced::new(Arc::new(MemRegistry::new()));
    let repo: RepoName = name("app");
    let data = random_bytes(100);
    let digest = Digest::sha256(&data);
    reg.push_blob(&repo, &digest, None, bytes_stream(data, 10))
        .await
        .unwrap();
    reg.get_blob(&repo, &digest)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(captured.lines().is_empty(), "{:?}", captured.lines());
}

/// The calls a recorder saw, once each, sorted.
fn seen_once(recorder: &Recorder) -> Vec<&'static str> {
    let mut seen = recorder.seen();
    seen.sort_unstable();
    seen.dedup();
    seen
}

#[tokio::test]
async fn every_call_reaches_the_inner_registry_and_is_traced() {
    let _serial = one_at_a_time().await;
    let mut all = ALL_CALLS.to_vec();
    all.sort_unstable();

    let untraced = Recorder::new();
    let reg = Traced::new(Arc::new(untraced.clone()));
    assert_eq!(lost_calls(&reg).await, Vec::<&str>::new());
    assert_eq!(seen_once(&untraced), all, "with tracing off");

    let captured = Captured::default();
    let _guard = captured.install(Level::TRACE);
    let traced = Recorder::new();
    let reg = Traced::new(Arc::new(traced.clone()));
    assert_eq!(lost_calls(&reg).await, Vec::<&str>::new());
    assert_eq!(seen_once(&traced), all, "with tracing on");
    let lines = captured.lines();
    for call in ALL_CALLS {
        // A writer's chunk size is a query, not traced.
        if *call == "writer.chunk_min" {
            continue;
        }
        let field = format!("method=\"{}\"", call.trim_start_matches("writer."));
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" oci_debug: ") && l.contains(&field)),
            "{call} is not traced:\n{}",
            lines.join("\n")
        );
    }
}
