//! Where a feed's files come from: a zip archive or a folder.
//!
//! Large files are decompressed on a second thread while the first parses,
//! which is most of what a 2-core machine can give an import.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use crate::gtfs::LoadError;

/// A GTFS feed on disk: a `.zip` or a directory of `.txt` files.
pub(crate) enum FeedSource {
    Zip {
        path: PathBuf,
        /// Entry names by file name, so feeds zipped inside a folder still load.
        entries: Vec<(String, String, u64)>,
    },
    Dir {
        path: PathBuf,
    },
}

/// A readable file of the feed.
pub(crate) type FeedFile = Box<dyn Read + Send>;

/// Files bigger than this are read on a background thread.
const BACKGROUND_THRESHOLD: u64 = 4 << 20;
const CHUNK: usize = 256 << 10;

impl FeedSource {
    pub(crate) fn open(path: &Path) -> Result<FeedSource, LoadError> {
        let meta = std::fs::metadata(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        if meta.is_dir() {
            return Ok(FeedSource::Dir {
                path: path.to_owned(),
            });
        }
        let file = File::open(path).map_err(|source| LoadError::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut archive =
            zip::ZipArchive::new(BufReader::new(file)).map_err(|e| LoadError::Zip {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let mut entries = Vec::new();
        for i in 0..archive.len() {
            let name = archive.name_for_index(i).unwrap_or_default().to_owned();
            if name.ends_with('/') || name.starts_with("__MACOSX") {
                continue;
            }
            let base = name.rsplit('/').next().unwrap_or(&name).to_owned();
            let size = archive.by_index_raw(i).map(|e| e.size()).unwrap_or(0);
            entries.push((base, name, size));
        }
        Ok(FeedSource::Zip {
            path: path.to_owned(),
            entries,
        })
    }

    /// Names of all `.txt` files in the feed.
    pub(crate) fn file_names(&self) -> Vec<String> {
        match self {
            FeedSource::Zip { entries, .. } => entries.iter().map(|e| e.0.clone()).collect(),
            FeedSource::Dir { path } => std::fs::read_dir(path)
                .map(|dir| {
                    dir.filter_map(|e| e.ok())
                        .filter(|e| e.path().is_file())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Opens `name` (e.g. `stops.txt`), returning its reader and uncompressed
    /// size, or `None` when the feed has no such file.
    pub(crate) fn open_file(&self, name: &str) -> Result<Option<(FeedFile, u64)>, LoadError> {
        match self {
            FeedSource::Dir { path } => {
                let file_path = path.join(name);
                match File::open(&file_path) {
                    Ok(file) => {
                        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                        Ok(Some((Box::new(file), size)))
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(LoadError::Io {
                        path: file_path,
                        source,
                    }),
                }
            }
            FeedSource::Zip { path, entries } => {
                let Some((_, entry, size)) = entries.iter().find(|e| e.0 == name) else {
                    return Ok(None);
                };
                let (path, entry, size) = (path.clone(), entry.clone(), *size);
                if size < BACKGROUND_THRESHOLD {
                    let mut bytes = Vec::with_capacity(size as usize);
                    read_entry(&path, &entry, |chunk| {
                        bytes.extend_from_slice(chunk);
                        true
                    })?;
                    return Ok(Some((Box::new(io::Cursor::new(bytes)), size)));
                }
                Ok(Some((Box::new(BackgroundReader::spawn(path, entry)), size)))
            }
        }
    }
}

/// Decompresses `entry` of the zip at `path`, handing chunks to `sink` until it returns false.
fn read_entry(
    path: &Path,
    entry: &str,
    mut sink: impl FnMut(&[u8]) -> bool,
) -> Result<(), LoadError> {
    let zip_error = |e: &dyn std::fmt::Display| LoadError::Zip {
        path: path.to_owned(),
        message: format!("{entry}: {e}"),
    };
    let file = File::open(path).map_err(|source| LoadError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| zip_error(&e))?;
    let mut reader = archive.by_name(entry).map_err(|e| zip_error(&e))?;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match reader.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(zip_error(&e)),
            }
        }
        if filled == 0 || !sink(&buf[..filled]) {
            return Ok(());
        }
    }
}

/// A reader fed by a thread that decompresses a zip entry ahead of the parser.
struct BackgroundReader {
    chunks: mpsc::Receiver<Result<Vec<u8>, String>>,
    current: Vec<u8>,
    pos: usize,
}

impl BackgroundReader {
    fn spawn(path: PathBuf, entry: String) -> BackgroundReader {
        // A bounded queue keeps memory flat however far ahead decompression runs.
        let (tx, rx) = mpsc::sync_channel(4);
        thread::spawn(move || {
            let result = read_entry(&path, &entry, |chunk| tx.send(Ok(chunk.to_vec())).is_ok());
            if let Err(e) = result {
                let _ = tx.send(Err(e.to_string()));
            }
        });
        BackgroundReader {
            chunks: rx,
            current: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for BackgroundReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.chunks.recv() {
                Ok(Ok(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Ok(Err(message)) => return Err(io::Error::other(message)),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.pos);
        out[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
