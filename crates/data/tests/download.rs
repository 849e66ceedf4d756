//! Download, verification and atomic writes, tested offline against a local HTTP server.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fep_data::download::{
    ChecksumMatch, FetchOptions, ManifestDataset, ManifestFile, ManifestUnpack, digest_file,
    fetch_with, part_path,
};
use fep_data::{
    Cifar10, DataError, DatasetKind, FetchEvent, Manifest, Mnist, Split, atomic_write,
    bundled_cifar_dir, bundled_mnist_dir, verify_file,
};

/// What the test server logged for one request.
#[derive(Debug, Clone)]
struct Logged {
    path: String,
    range: Option<String>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1. Routes are `/<mirror>/<file>`:
/// `good` serves the file with Range support, `norange` ignores Range, `corrupt` serves it
/// with one byte flipped, `cut` promises the full length but closes after half, and anything
/// else is a 404.
struct TestServer {
    base: String,
    log: Arc<Mutex<Vec<Logged>>>,
}

impl TestServer {
    fn start(files: BTreeMap<String, Vec<u8>>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let files = Arc::new(files);
        let thread_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let files = Arc::clone(&files);
                let log = Arc::clone(&thread_log);
                std::thread::spawn(move || {
                    let _ = serve(stream, &files, &log);
                });
            }
        });
        Self { base, log }
    }

    fn mirror(&self, name: &str) -> String {
        format!("{}/{name}/", self.base)
    }

    fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

fn serve(
    stream: TcpStream,
    files: &BTreeMap<String, Vec<u8>>,
    log: &Mutex<Vec<Logged>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("range")
        {
            range = Some(v.trim().to_string());
        }
    }
    log.lock().unwrap().push(Logged {
        path: path.clone(),
        range: range.clone(),
    });
    let mut out = stream;
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let mirror = parts.next().unwrap_or("");
    let name = parts.next().unwrap_or("");
    let Some(body) = files.get(name) else {
        return respond(&mut out, "404 Not Found", &[], b"not here");
    };
    match mirror {
        "good" => {
            let start = range
                .as_deref()
                .and_then(|r| r.strip_prefix("bytes="))
                .and_then(|r| r.strip_suffix('-'))
                .and_then(|n| n.parse::<usize>().ok());
            match start {
                Some(s) if s < body.len() => {
                    let cr = format!("Content-Range: bytes {s}-{}/{}", body.len() - 1, body.len());
                    respond(&mut out, "206 Partial Content", &[cr], &body[s..])
                }
                Some(_) => {
                    let cr = format!("Content-Range: bytes */{}", body.len());
                    respond(&mut out, "416 Range Not Satisfiable", &[cr], &[])
                }
                None => respond(&mut out, "200 OK", &[], body),
            }
        }
        "norange" => respond(&mut out, "200 OK", &[], body),
        "corrupt" => {
            let mut bad = body.clone();
            let mid = bad.len() / 2;
            bad[mid] ^= 0xff;
            respond(&mut out, "200 OK", &[], &bad)
        }
        "cut" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            out.write_all(head.as_bytes())?;
            out.write_all(&body[..body.len() / 2])?;
            out.flush()
        }
        _ => respond(&mut out, "404 Not Found", &[], b"no such mirror"),
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    headers: &[String],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: application/octet-stream\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(body)?;
    out.flush()
}

const MNIST_FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

fn subset_files() -> BTreeMap<String, Vec<u8>> {
    let dir = bundled_mnist_dir().unwrap();
    MNIST_FILES
        .iter()
        .map(|n| (n.to_string(), std::fs::read(dir.join(n)).unwrap()))
        .collect()
}

/// A manifest whose "mnist" entry describes the bundled subset by its .gz sha256.
fn subset_manifest(names: &[&str]) -> Manifest {
    let dir = bundled_mnist_dir().unwrap();
    let files = names
        .iter()
        .map(|n| {
            let d = digest_file(dir.join(n)).unwrap();
            ManifestFile {
                name: n.to_string(),
                size: Some(d.size),
                sha256: Some(d.sha256),
                ..Default::default()
            }
        })
        .collect();
    let mut datasets = BTreeMap::new();
    datasets.insert(
        "mnist".to_string(),
        ManifestDataset {
            description: "test".into(),
            mirrors: vec![],
            files,
            unpack: None,
        },
    );
    Manifest {
        schema: 1,
        datasets,
    }
}

fn options(mirrors: Vec<String>) -> FetchOptions {
    FetchOptions {
        mirrors,
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
    }
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn unused_port_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    drop(l);
    url
}

#[test]
fn mirror_fallback_downloads_verifies_and_loads() {
    let server = TestServer::start(subset_files());
    let manifest = subset_manifest(&MNIST_FILES);
    let tmp = tempfile::tempdir().unwrap();
    let mirrors = vec![
        server.mirror("missing"),
        server.mirror("corrupt"),
        server.mirror("good"),
    ];
    let mut events = Vec::new();
    let report = fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(mirrors),
        |e| events.push(e.clone()),
    )
    .unwrap();
    assert_eq!(report.files.len(), 4);
    for file in &report.files {
        assert_eq!(file.checksum, ChecksumMatch::Sha256);
        assert_eq!(file.failures.len(), 2, "{:?}", file.failures);
        assert!(
            file.failures[0].reason.contains("404"),
            "{}",
            file.failures[0].reason
        );
        assert!(
            file.failures[1].reason.contains("checksum mismatch"),
            "{}",
            file.failures[1].reason
        );
        assert!(file.url.as_deref().unwrap().contains("/good/"));
    }
    // Only complete, verified files under their final names; no .part left behind.
    let mut expected: Vec<String> = MNIST_FILES.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(dir_names(tmp.path()), expected);
    let test = Mnist::load_dir(tmp.path(), Split::Test).unwrap();
    assert_eq!(test.len(), 2000);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, FetchEvent::Progress { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, FetchEvent::MirrorFailed { .. }))
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, FetchEvent::Done { .. }))
            .count(),
        4
    );

    // A second run finds everything in place and downloads nothing.
    let before = server.requests().len();
    let mut present = 0;
    let again = fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(vec![server.mirror("good")]),
        |e| {
            if matches!(e, FetchEvent::AlreadyPresent { .. }) {
                present += 1;
            }
        },
    )
    .unwrap();
    assert_eq!(present, 4);
    assert!(again.files.iter().all(|f| f.url.is_none()));
    assert_eq!(server.requests().len(), before);
}

#[test]
fn every_failed_mirror_is_reported() {
    let server = TestServer::start(subset_files());
    let manifest = subset_manifest(&["t10k-labels-idx1-ubyte.gz"]);
    let tmp = tempfile::tempdir().unwrap();
    let refused = unused_port_url();
    let mirrors = vec![
        server.mirror("missing"),
        server.mirror("corrupt"),
        refused.clone(),
    ];
    let err = fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(mirrors),
        |_| {},
    )
    .unwrap_err();
    match &err {
        DataError::AllMirrorsFailed { file, failures } => {
            assert_eq!(file, "t10k-labels-idx1-ubyte.gz");
            assert_eq!(failures.len(), 3);
        }
        other => panic!("{other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("/missing/t10k-labels-idx1-ubyte.gz: HTTP 404"),
        "{msg}"
    );
    assert!(
        msg.contains("/corrupt/t10k-labels-idx1-ubyte.gz: checksum mismatch"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{refused}t10k-labels-idx1-ubyte.gz")),
        "{msg}"
    );
    // Nothing is left: no final file, no .part.
    assert!(
        dir_names(tmp.path()).is_empty(),
        "{:?}",
        dir_names(tmp.path())
    );
}

#[test]
fn partial_download_is_resumed_with_a_range_request() {
    let files = subset_files();
    let name = "t10k-images-idx3-ubyte.gz";
    let full = files[name].clone();
    let server = TestServer::start(files);
    let manifest = subset_manifest(&[name]);
    let tmp = tempfile::tempdir().unwrap();
    let half = full.len() / 2;
    std::fs::write(part_path(&tmp.path().join(name)), &full[..half]).unwrap();
    let mut resumed = None;
    fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(vec![server.mirror("good")]),
        |e| {
            if let FetchEvent::Started { resumed_from, .. } = e {
                resumed = Some(*resumed_from);
            }
        },
    )
    .unwrap();
    assert_eq!(resumed, Some(half as u64));
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0].range.as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    assert_eq!(std::fs::read(tmp.path().join(name)).unwrap(), full);
    assert_eq!(dir_names(tmp.path()), vec![name.to_string()]);
}

#[test]
fn server_ignoring_range_restarts_cleanly() {
    let files = subset_files();
    let name = "t10k-labels-idx1-ubyte.gz";
    let full = files[name].clone();
    let server = TestServer::start(files);
    let manifest = subset_manifest(&[name]);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(part_path(&tmp.path().join(name)), &full[..100]).unwrap();
    fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(vec![server.mirror("norange")]),
        |_| {},
    )
    .unwrap();
    assert_eq!(std::fs::read(tmp.path().join(name)).unwrap(), full);
}

#[test]
fn interrupted_transfer_resumes_on_the_next_mirror() {
    let files = subset_files();
    let name = "train-labels-idx1-ubyte.gz";
    let full = files[name].clone();
    let server = TestServer::start(files);
    let manifest = subset_manifest(&[name]);
    let tmp = tempfile::tempdir().unwrap();
    let report = fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(vec![server.mirror("cut"), server.mirror("good")]),
        |_| {},
    )
    .unwrap();
    assert_eq!(report.files[0].failures.len(), 1);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].path.starts_with("/cut/"));
    assert_eq!(
        requests[1].range.as_deref(),
        Some(format!("bytes={}-", full.len() / 2).as_str())
    );
    assert_eq!(std::fs::read(tmp.path().join(name)).unwrap(), full);
}

#[test]
fn corrupt_partial_file_is_retried_from_scratch() {
    let files = subset_files();
    let name = "t10k-labels-idx1-ubyte.gz";
    let full = files[name].clone();
    let server = TestServer::start(files);
    let manifest = subset_manifest(&[name]);
    let tmp = tempfile::tempdir().unwrap();
    let mut junk = full[..200].to_vec();
    junk[10] ^= 1;
    std::fs::write(part_path(&tmp.path().join(name)), &junk).unwrap();
    let report = fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(vec![server.mirror("good")]),
        |_| {},
    )
    .unwrap();
    assert!(report.files[0].failures.is_empty());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[0].range.is_some());
    assert!(requests[1].range.is_none());
    assert_eq!(std::fs::read(tmp.path().join(name)).unwrap(), full);
}

#[test]
fn recompressed_file_is_accepted_by_content_checksum() {
    let name = "t10k-labels-idx1-ubyte.gz";
    let path = bundled_mnist_dir().unwrap().join(name);
    let content = common::gunzip(&path);
    let recompressed = common::gzip(&content);
    let mut files = BTreeMap::new();
    files.insert(name.to_string(), recompressed.clone());
    let server = TestServer::start(files);
    let mut manifest = subset_manifest(&[name]);
    {
        let entry = &mut manifest.datasets.get_mut("mnist").unwrap().files[0];
        entry.content_sha256 = Some(common::sha256_hex(&content));
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = fetch_with(
        &manifest,
        DatasetKind::Mnist,
        tmp.path(),
        &options(vec![server.mirror("good")]),
        |_| {},
    )
    .unwrap();
    assert_eq!(report.files[0].checksum, ChecksumMatch::ContentSha256);
    assert_eq!(std::fs::read(tmp.path().join(name)).unwrap(), recompressed);
}

#[test]
fn cifar_archive_is_downloaded_verified_and_unpacked() {
    // A miniature cifar-10-binary.tar.gz made of the bundled fixture.
    let src = bundled_cifar_dir().unwrap();
    let members = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
        "batches.meta.txt",
    ];
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append_path_with_name(src.join("README.md"), "cifar-10-batches-bin/readme.html")
        .unwrap();
    for m in members {
        builder
            .append_path_with_name(src.join(m), format!("cifar-10-batches-bin/{m}"))
            .unwrap();
    }
    let archive = common::gzip(&builder.into_inner().unwrap());
    let archive_md5 = format!("{:x}", md5::compute(&archive));
    let mut files = BTreeMap::new();
    files.insert("cifar-10-binary.tar.gz".to_string(), archive.clone());
    let server = TestServer::start(files);

    let mut manifest = Manifest::bundled().unwrap();
    {
        let cifar = manifest.datasets.get_mut("cifar10").unwrap();
        cifar.files[0].md5 = Some(archive_md5);
        cifar.files[0].sha256 = None;
        cifar.files[0].size = Some(archive.len() as u64);
        assert_eq!(
            cifar.unpack,
            Some(ManifestUnpack {
                archive: "cifar-10-binary.tar.gz".into(),
                format: "tar.gz".into(),
                members: members
                    .iter()
                    .map(|m| format!("cifar-10-batches-bin/{m}"))
                    .collect(),
            })
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let report = fetch_with(
        &manifest,
        DatasetKind::Cifar10,
        tmp.path(),
        &options(vec![server.mirror("good")]),
        |_| {},
    )
    .unwrap();
    assert_eq!(report.files[0].checksum, ChecksumMatch::Md5);
    assert_eq!(report.unpacked.len(), 7);
    let test = Cifar10::load_dir(tmp.path(), Split::Test).unwrap();
    assert_eq!(test.labels(), &[8, 5, 7, 8, 6]);
    assert_eq!(
        Cifar10::load_dir(tmp.path(), Split::Train).unwrap().len(),
        15
    );
    for m in members {
        assert_eq!(
            std::fs::read(tmp.path().join(m)).unwrap(),
            std::fs::read(src.join(m)).unwrap()
        );
    }
    assert!(!tmp.path().join("readme.html").exists());
}

#[test]
fn verify_file_against_local_files() {
    let dir = bundled_mnist_dir().unwrap();
    let path = dir.join("t10k-labels-idx1-ubyte.gz");
    let d = digest_file(&path).unwrap();
    let content_sha = common::sha256_hex(&common::gunzip(&path));
    // Values from datasets/mnist-subset/README.md.
    assert_eq!(
        d.sha256,
        "8a97eeec2499289d406fd55fec117adc391bee47c640be5bf30c340a8de72fa5"
    );
    assert_eq!(
        content_sha,
        "7b098e5f6a3065807cebeabf36fb1724a8aff19f2673ac08b4923e0e8c715bce"
    );
    let by_sha = ManifestFile {
        name: "x".into(),
        sha256: Some(d.sha256.clone()),
        ..Default::default()
    };
    assert_eq!(verify_file(&path, &by_sha).unwrap(), ChecksumMatch::Sha256);
    let by_md5 = ManifestFile {
        name: "x".into(),
        md5: Some(d.md5.clone()),
        ..Default::default()
    };
    assert_eq!(verify_file(&path, &by_md5).unwrap(), ChecksumMatch::Md5);
    let by_content = ManifestFile {
        name: "x".into(),
        sha256: Some("0".repeat(64)),
        content_sha256: Some(content_sha.clone()),
        ..Default::default()
    };
    assert_eq!(
        verify_file(&path, &by_content).unwrap(),
        ChecksumMatch::ContentSha256
    );
    let wrong = ManifestFile {
        name: "x".into(),
        sha256: Some("0".repeat(64)),
        content_sha256: Some("1".repeat(64)),
        ..Default::default()
    };
    let err = verify_file(&path, &wrong).unwrap_err();
    assert!(matches!(err, DataError::ChecksumMismatch { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("t10k-labels-idx1-ubyte.gz") && msg.contains(&d.sha256),
        "{msg}"
    );
    // A raw (not gzip) file with only a content checksum: mismatch, says why.
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("raw");
    std::fs::write(&raw, common::gunzip(&path)).unwrap();
    let only_content = ManifestFile {
        name: "x".into(),
        content_sha256: Some(content_sha),
        ..Default::default()
    };
    let msg = verify_file(&raw, &only_content).unwrap_err().to_string();
    assert!(msg.contains("not gzip"), "{msg}");
    assert!(matches!(
        verify_file(tmp.path().join("nope"), &only_content),
        Err(DataError::Missing { .. })
    ));
}

#[test]
fn atomic_write_replaces_whole_files() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nested/dir/result.json");
    atomic_write(&path, b"{\"a\": 1}").unwrap();
    atomic_write(&path, b"{\"a\": 2, \"b\": 3}").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\": 2, \"b\": 3}");
    assert_eq!(
        dir_names(path.parent().unwrap()),
        vec!["result.json".to_string()]
    );
    // Writing into a path whose parent is a file fails with an error naming it.
    let err = atomic_write(path.join("child"), b"x").unwrap_err();
    assert!(err.path().is_some(), "{err}");
}

#[test]
fn shipped_manifest_matches_the_documented_checksums() {
    let m = Manifest::bundled().unwrap();
    let on_disk = Manifest::load(fep_data::bundled::bundled_manifest_path().unwrap()).unwrap();
    assert_eq!(m, on_disk);
    let mnist = m.dataset(DatasetKind::Mnist).unwrap();
    let t10k = mnist
        .files
        .iter()
        .find(|f| f.name == "t10k-labels-idx1-ubyte.gz")
        .unwrap();
    assert_eq!(
        t10k.md5.as_deref(),
        Some("ec29112dd5afa0611ce80d1b7f02629c")
    );
    assert_eq!(
        t10k.content_sha256.as_deref(),
        Some("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2")
    );
    assert!(mnist.mirrors.iter().all(|u| u.ends_with('/')));
}
