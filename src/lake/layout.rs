//! The lake's directory and how its files become durable.
//!
//! `<dir>/type=<event type>/date=YYYY-MM-DD/hour=HH/part-<first>-<last>.parquet`: the date and
//! hour of the event's `ce-time` in UTC; `first` and `last` are the range of stream sequences
//! the flush that wrote the file covered (every row's `sequence` lies within it; one flush writes
//! one file per event type and hour it holds, all named with the same range).
//!
//! The files are the checkpoint. A flush writes every file under a temporary name
//! (`part-<first>-<last>.parquet.tmp`), flushes each to disk, flushes their directories, then
//! renames them all and flushes the directories again. On start, [`recover`] reads the names:
//! the highest `last` of a finished file is where the lake stands. A flush interrupted while
//! renaming (some of its files renamed) is finished, since all its files were on disk before the
//! first rename; the temporary files of a flush that renamed none are deleted, and the lake goes on
//! from the sequence after the checkpoint. So a crash at any moment leaves neither a gap nor a
//! duplicate row.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::parquet_file::{self, TableBuffer};

/// Where a row goes: its event type and the UTC date and hour of its `ce-time`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Partition {
    /// The versioned event type written.
    pub event_type: String,
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// `HH`, UTC.
    pub hour: String,
}

impl Partition {
    /// The partition of an event of `event_type` that happened at `time`.
    pub fn of(event_type: &str, time: OffsetDateTime) -> Self {
        let t = time.to_offset(time::UtcOffset::UTC);
        Self {
            event_type: event_type.to_owned(),
            date: format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
            hour: format!("{:02}", t.hour()),
        }
    }

    /// Its directory under `root`.
    pub fn dir(&self, root: &Path) -> PathBuf {
        root.join(format!("type={}", self.event_type))
            .join(format!("date={}", self.date))
            .join(format!("hour={}", self.hour))
    }
}

/// `part-<first>-<last>.parquet`.
pub fn part_name(first: u64, last: u64) -> String {
    format!("part-{first}-{last}.parquet")
}

const TEMP_SUFFIX: &str = ".tmp";

/// `(first, last, temporary)` of a part file's name, or `None` for another name.
pub fn parse_part_name(name: &str) -> Option<(u64, u64, bool)> {
    let (name, temporary) = match name.strip_suffix(TEMP_SUFFIX) {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    let range = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last, temporary))
}

/// A part file found in the lake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartFile {
    /// Its path.
    pub path: PathBuf,
    /// The event type of its directory.
    pub event_type: String,
    /// The first sequence of its range.
    pub first: u64,
    /// The last sequence of its range.
    pub last: u64,
    /// Whether it still has its temporary name.
    pub temporary: bool,
}

/// Every part file under `root` (finished and temporary), in no particular order. A missing
/// `root` has none.
pub fn parts(root: &Path) -> io::Result<Vec<PartFile>> {
    let mut found = Vec::new();
    let children = |dir: &Path, prefix: &str| -> io::Result<Vec<(String, PathBuf)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(value) = name.strip_prefix(prefix)
                && entry.file_type()?.is_dir()
            {
                out.push((value.to_owned(), entry.path()));
            }
        }
        Ok(out)
    };
    if !root.exists() {
        return Ok(found);
    }
    for (event_type, type_dir) in children(root, "type=")? {
        for (_, date_dir) in children(&type_dir, "date=")? {
            for (_, hour_dir) in children(&date_dir, "hour=")? {
                for entry in fs::read_dir(&hour_dir)? {
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if let Some((first, last, temporary)) = parse_part_name(&name) {
                        found.push(PartFile {
                            path: entry.path(),
                            event_type: event_type.clone(),
                            first,
                            last,
                            temporary,
                        });
                    }
                }
            }
        }
    }
    Ok(found)
}

/// Flushes a directory's entries to disk.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` (under `root`, which exists) and any missing parents, flushing each new entry's
/// parent directory.
fn create_dir_durably(root: &Path, dir: &Path) -> io::Result<()> {
    let relative = dir.strip_prefix(root).map_err(io::Error::other)?;
    let mut path = root.to_path_buf();
    for component in relative.components() {
        let parent = path.clone();
        path.push(component);
        if !path.is_dir() {
            match fs::create_dir(&path) {
                Ok(()) => sync_dir(&parent)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// A flush whose files are written and on disk under their temporary names, not yet renamed.
#[derive(Debug)]
pub struct Prepared {
    /// `(temporary, final)` path of each file.
    renames: Vec<(PathBuf, PathBuf)>,
    dirs: BTreeSet<PathBuf>,
    /// Bytes written, per event type.
    pub bytes: BTreeMap<String, u64>,
}

impl Prepared {
    /// How many files the flush writes.
    pub fn files(&self) -> usize {
        self.renames.len()
    }

    /// Renames every file to its final name and flushes the directories: the flush is done.
    pub fn publish(self) -> io::Result<()> {
        for (temporary, done) in &self.renames {
            fs::rename(temporary, done)?;
        }
        for dir in &self.dirs {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Deletes the temporary files (a flush given up).
    pub fn abandon(self) {
        for (temporary, _) in &self.renames {
            let _ = fs::remove_file(temporary);
        }
    }
}

/// Writes the flush of stream sequences `first..=last`: each partition's rows to a temporary file,
/// flushed to disk with its directory. [`Prepared::publish`] then makes them visible.
///
/// Errors: a directory or file cannot be created or written (the temporary files written so far
/// are deleted).
pub fn prepare(
    root: &Path,
    first: u64,
    last: u64,
    tables: &[(Partition, TableBuffer)],
) -> io::Result<Prepared> {
    let mut prepared = Prepared {
        renames: Vec::with_capacity(tables.len()),
        dirs: BTreeSet::new(),
        bytes: BTreeMap::new(),
    };
    match write_temporaries(root, first, last, tables, &mut prepared) {
        Ok(()) => Ok(prepared),
        Err(e) => {
            prepared.abandon();
            Err(e)
        }
    }
}

/// The files of [`prepare`], each recorded in `prepared` as soon as it exists.
fn write_temporaries(
    root: &Path,
    first: u64,
    last: u64,
    tables: &[(Partition, TableBuffer)],
    prepared: &mut Prepared,
) -> io::Result<()> {
    for (partition, buffer) in tables.iter().filter(|(_, b)| b.rows() > 0) {
        let dir = partition.dir(root);
        create_dir_durably(root, &dir)?;
        let done = dir.join(part_name(first, last));
        let temporary = dir.join(format!("{}{TEMP_SUFFIX}", part_name(first, last)));
        prepared.renames.push((temporary.clone(), done));
        prepared.dirs.insert(dir);
        let size = parquet_file::write(&temporary, buffer, first, last)?;
        *prepared
            .bytes
            .entry(partition.event_type.clone())
            .or_default() += size;
    }
    for dir in &prepared.dirs {
        sync_dir(dir)?;
    }
    Ok(())
}

/// What [`recover`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The highest `last` of a finished file: every event up to it is in the lake (0: none).
    pub checkpoint: u64,
    /// Temporary files of an interrupted flush that were renamed to finish it.
    pub finished: usize,
    /// Temporary files of a flush that had renamed none, deleted.
    pub deleted: usize,
}

/// Makes the lake under `root` consistent after a stop at any moment, and tells where it stands
/// (creating `root` if missing). See the module's documentation.
///
/// Errors: the directory cannot be read, or a file renamed or deleted.
pub fn recover(root: &Path) -> io::Result<Recovered> {
    fs::create_dir_all(root)?;
    let found = parts(root)?;
    let flushes: BTreeSet<(u64, u64)> = found
        .iter()
        .filter(|p| !p.temporary)
        .map(|p| (p.first, p.last))
        .collect();
    let mut recovered = Recovered {
        checkpoint: flushes.iter().map(|f| f.1).max().unwrap_or(0),
        ..Default::default()
    };
    let mut dirs = BTreeSet::new();
    for part in found.iter().filter(|p| p.temporary) {
        let dir = part
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        if flushes.contains(&(part.first, part.last)) {
            let done = dir.join(part_name(part.first, part.last));
            fs::rename(&part.path, done)?;
            recovered.finished += 1;
        } else {
            fs::remove_file(&part.path)?;
            recovered.deleted += 1;
        }
        dirs.insert(dir);
    }
    for dir in dirs {
        sync_dir(&dir)?;
    }
    Ok(recovered)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn partitions_are_utc_dates_and_hours() {
        let p = Partition::of("onair.gift.sent.v2", datetime!(2025-10-19 01:30 +2));
        assert_eq!(
            p.dir(Path::new("/lake")),
            Path::new("/lake/type=onair.gift.sent.v2/date=2025-10-18/hour=23")
        );
    }

    #[test]
    fn part_names_carry_their_range() {
        assert_eq!(part_name(1, 500), "part-1-500.parquet");
        assert_eq!(parse_part_name("part-1-500.parquet"), Some((1, 500, false)));
        assert_eq!(parse_part_name("part-7-9.parquet.tmp"), Some((7, 9, true)));
        assert_eq!(parse_part_name("part-9-7.parquet"), None);
        assert_eq!(parse_part_name("notes.txt"), None);
    }

    #[test]
    fn recovery_finishes_a_flush_that_began_renaming_and_drops_one_that_did_not() {
        let root = std::env::temp_dir().join(format!("onair-lake-{}", uuid::Uuid::new_v4()));
        let dir = |t: &str| {
            let d = root.join(format!("type={t}/date=2025-10-19/hour=12"));
            fs::create_dir_all(&d).unwrap();
            d
        };
        let (a, b) = (dir("a"), dir("b"));
        fs::write(a.join("part-1-10.parquet"), b"").unwrap();
        fs::write(b.join("part-1-10.parquet"), b"").unwrap();
        // Flush 11..=20: renamed in a, not yet in b.
        fs::write(a.join("part-11-20.parquet"), b"").unwrap();
        fs::write(b.join("part-11-20.parquet.tmp"), b"").unwrap();
        // Flush 21..=30: nothing renamed.
        fs::write(a.join("part-21-30.parquet.tmp"), b"").unwrap();
        let recovered = recover(&root).unwrap();
        assert_eq!(
            recovered,
            Recovered {
                checkpoint: 20,
                finished: 1,
                deleted: 1
            }
        );
        assert!(b.join("part-11-20.parquet").exists());
        assert!(!a.join("part-21-30.parquet.tmp").exists());
        let _ = fs::remove_dir_all(&root);
    }
}
