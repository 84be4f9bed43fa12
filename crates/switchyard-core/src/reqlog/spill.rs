//! The spill: an append-only JSON-lines file where records wait while the store cannot take
//! them, replayed (and deleted) once it can.
//!
//! Records are appended to `reqlog-spill.jsonl`. A replay first renames that file to
//! `reqlog-spill-<n>.jsonl` under the append lock, so appends never race with the read; then it
//! stores every rotated file, oldest first, in batches, and deletes each file only after all its
//! records are stored. Inserts ignore ids already stored, so a replay cut short and re-run (or
//! a crash between storing and deleting) never duplicates a record.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::Record;

const ACTIVE: &str = "reqlog-spill.jsonl";
const ROTATED_PREFIX: &str = "reqlog-spill-";

/// The spill directory and its append handle.
#[derive(Debug)]
pub struct Spill {
    dir: PathBuf,
    active: Mutex<Option<File>>,
}

/// A chunk of records read from a rotated file, and where the next chunk starts.
pub struct Chunk {
    /// The records read.
    pub records: Vec<Record>,
    /// Lines that could not be parsed (a write cut short by a crash).
    pub bad_lines: u64,
    /// Offset of the next chunk; `None` at the end of the file.
    pub next: Option<u64>,
}

impl Spill {
    /// A spill in `dir` (created when first written).
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            active: Mutex::new(None),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends records, one JSON line each, and flushes them to the OS. Blocking file IO: the
    /// writer calls it on a blocking thread; request threads only when the queue is full.
    pub fn append(&self, records: &[Record]) -> std::io::Result<()> {
        let mut buf = Vec::with_capacity(records.len() * 512);
        for r in records {
            serde_json::to_writer(&mut buf, r).map_err(std::io::Error::other)?;
            buf.push(b'\n');
        }
        let mut slot = self.active.lock();
        if slot.is_none() {
            std::fs::create_dir_all(&self.dir)?;
            *slot = Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.dir.join(ACTIVE))?,
            );
        }
        let Some(file) = slot.as_mut() else {
            return Err(std::io::Error::other("spill file not open"));
        };
        if let Err(e) = file.write_all(&buf).and_then(|()| file.flush()) {
            // Re-open next time: the file may have been removed or the disk freed.
            *slot = None;
            return Err(e);
        }
        Ok(())
    }

    /// Moves the active file aside for replay (when it has data) and lists every file waiting
    /// for replay, oldest first.
    pub fn rotate(&self) -> std::io::Result<Vec<PathBuf>> {
        {
            let mut slot = self.active.lock();
            let active = self.dir.join(ACTIVE);
            if active.metadata().is_ok_and(|m| m.len() > 0) {
                *slot = None;
                let n = self.next_seq()?;
                std::fs::rename(
                    &active,
                    self.dir.join(format!("{ROTATED_PREFIX}{n:020}.jsonl")),
                )?;
            }
        }
        self.pending()
    }

    /// Files waiting for replay, oldest first.
    pub fn pending(&self) -> std::io::Result<Vec<PathBuf>> {
        let mut out: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(ROTATED_PREFIX) && n.ends_with(".jsonl"))
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        out.sort();
        Ok(out)
    }

    /// Whether anything waits for replay (rotated files or a non-empty active file).
    pub fn has_backlog(&self) -> bool {
        self.dir.join(ACTIVE).metadata().is_ok_and(|m| m.len() > 0)
            || self.pending().is_ok_and(|p| !p.is_empty())
    }

    fn next_seq(&self) -> std::io::Result<u64> {
        let last = self
            .pending()?
            .last()
            .and_then(|p| {
                p.file_name()?
                    .to_str()?
                    .strip_prefix(ROTATED_PREFIX)?
                    .strip_suffix(".jsonl")?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or(0);
        Ok(last + 1)
    }

    /// Reads up to `max` records of `path` from byte `offset`.
    pub fn read_chunk(path: &Path, offset: u64, max: usize) -> std::io::Result<Chunk> {
        let mut file = File::open(path)?;
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = BufReader::new(file);
        let mut records = Vec::new();
        let mut bad_lines = 0;
        let mut pos = offset;
        let mut line = String::new();
        while records.len() < max {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 {
                return Ok(Chunk {
                    records,
                    bad_lines,
                    next: None,
                });
            }
            pos += n as u64;
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Record>(text) {
                Ok(r) => records.push(r),
                Err(_) => bad_lines += 1,
            }
        }
        Ok(Chunk {
            records,
            bad_lines,
            next: Some(pos),
        })
    }
}
