//! One Parquet file of one event type: rows buffered column by column in memory, then written with
//! the `parquet` crate's low-level column writers (no Arrow), Snappy-compressed, dictionary
//! encoded, with page statistics.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;

use super::columns::{Cell, ColumnType, TableShape};

/// Most rows in one row group of a file.
pub const ROW_GROUP_ROWS: usize = 1_000_000;

/// The values of one column, nulls left out (the definition levels say where they are). Texts are
/// kept end to end in one buffer (`ends[i]` is where the i-th ends), not one allocation each.
#[derive(Debug)]
enum Values {
    Text { data: Vec<u8>, ends: Vec<usize> },
    Integer(Vec<i64>),
    Boolean(Vec<bool>),
}

#[derive(Debug)]
struct ColumnBuffer {
    values: Values,
    /// 1 for a value, 0 for a null (written only for nullable columns).
    definitions: Vec<i16>,
    nullable: bool,
}

/// Rows of one event type waiting to be written, column by column.
#[derive(Debug)]
pub struct TableBuffer {
    shape: Arc<TableShape>,
    columns: Vec<ColumnBuffer>,
    rows: usize,
    bytes: usize,
}

impl TableBuffer {
    /// An empty buffer for `shape`'s columns.
    pub fn new(shape: Arc<TableShape>) -> Self {
        let columns = shape
            .columns
            .iter()
            .map(|c| ColumnBuffer {
                values: match c.column_type {
                    ColumnType::Text | ColumnType::Json => Values::Text {
                        data: Vec::new(),
                        ends: Vec::new(),
                    },
                    ColumnType::Integer | ColumnType::Timestamp => Values::Integer(Vec::new()),
                    ColumnType::Boolean => Values::Boolean(Vec::new()),
                },
                definitions: Vec::new(),
                nullable: c.nullable,
            })
            .collect();
        Self {
            shape,
            columns,
            rows: 0,
            bytes: 0,
        }
    }

    /// The event type's columns.
    pub fn shape(&self) -> &TableShape {
        &self.shape
    }

    /// Rows buffered.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// About how many bytes the buffered values take (text lengths, 8 per number, 1 per
    /// boolean): what the size roll counts.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Appends a row (one cell per column, in the shape's order). A cell of the wrong kind is
    /// written as null.
    pub fn push(&mut self, row: Vec<Cell<'_>>) {
        debug_assert_eq!(row.len(), self.columns.len());
        for (column, cell) in self.columns.iter_mut().zip(row) {
            let stored = match (&mut column.values, cell) {
                (Values::Text { data, ends }, Cell::Text(s)) => {
                    self.bytes += s.len() + 8;
                    data.extend_from_slice(s.as_bytes());
                    ends.push(data.len());
                    true
                }
                (Values::Integer(v), Cell::Integer(n)) => {
                    self.bytes += 8;
                    v.push(n);
                    true
                }
                (Values::Boolean(v), Cell::Boolean(b)) => {
                    self.bytes += 1;
                    v.push(b);
                    true
                }
                _ => false,
            };
            if !stored && !column.nullable {
                // A required column always gets a value: an empty one rather than a shifted row.
                match &mut column.values {
                    Values::Text { data, ends } => ends.push(data.len()),
                    Values::Integer(v) => v.push(0),
                    Values::Boolean(v) => v.push(false),
                }
            }
            column.definitions.push(i16::from(stored));
        }
        self.rows += 1;
    }
}

/// The Parquet schema of a shape: required CloudEvents columns, optional payload columns.
pub fn parquet_schema(shape: &TableShape) -> parquet::errors::Result<Type> {
    let fields = shape
        .columns
        .iter()
        .map(|c| {
            let (physical, logical) = match c.column_type {
                ColumnType::Text | ColumnType::Json => {
                    (PhysicalType::BYTE_ARRAY, Some(LogicalType::String))
                }
                ColumnType::Integer => (PhysicalType::INT64, None),
                ColumnType::Timestamp => (
                    PhysicalType::INT64,
                    Some(LogicalType::timestamp(true, TimeUnit::MICROS)),
                ),
                ColumnType::Boolean => (PhysicalType::BOOLEAN, None),
            };
            Type::primitive_type_builder(&c.name, physical)
                .with_logical_type(logical)
                .with_repetition(if c.nullable {
                    Repetition::OPTIONAL
                } else {
                    Repetition::REQUIRED
                })
                .build()
                .map(Arc::new)
        })
        .collect::<parquet::errors::Result<Vec<_>>>()?;
    Type::group_type_builder("schema")
        .with_fields(fields)
        .build()
}

/// Writes `buffer` to a new file at `path` and flushes it to disk (`fsync`); returns the file's
/// size in bytes. `first` and `last` (the stream range the file belongs to) and the event type go
/// into the footer's key-value metadata (`onair.first_sequence`, `onair.last_sequence`,
/// `onair.event_type`).
///
/// Errors: the file cannot be created or written.
pub fn write(path: &Path, buffer: &TableBuffer, first: u64, last: u64) -> std::io::Result<u64> {
    write_in_groups(path, buffer, first, last, ROW_GROUP_ROWS)
}

/// [`write`] with row groups of at most `group_rows` rows.
fn write_in_groups(
    path: &Path,
    buffer: &TableBuffer,
    first: u64,
    last: u64,
    group_rows: usize,
) -> std::io::Result<u64> {
    let io = |e: parquet::errors::ParquetError| std::io::Error::other(e.to_string());
    let schema = Arc::new(parquet_schema(buffer.shape()).map_err(io)?);
    let metadata = vec![
        KeyValue::new("onair.event_type".into(), buffer.shape().event_type.clone()),
        KeyValue::new("onair.first_sequence".into(), first.to_string()),
        KeyValue::new("onair.last_sequence".into(), last.to_string()),
    ];
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("onair lake {}", env!("CARGO_PKG_VERSION")))
        .set_key_value_metadata(Some(metadata))
        .build();
    let file = File::create(path)?;
    let mut writer = SerializedFileWriter::new(
        BufWriter::with_capacity(1 << 20, file),
        schema,
        Arc::new(properties),
    )
    .map_err(io)?;
    let mut start = 0;
    loop {
        let end = (start + group_rows).min(buffer.rows);
        let mut group = writer.next_row_group().map_err(io)?;
        for column in &buffer.columns {
            let mut out = group.next_column().map_err(io)?.ok_or_else(|| {
                std::io::Error::other("fewer columns in the schema than buffered")
            })?;
            // The values of rows start..end: those before start and within, by definition level.
            let skip: usize = column.definitions[..start]
                .iter()
                .map(|&d| d as usize)
                .sum();
            let take: usize = column.definitions[start..end]
                .iter()
                .map(|&d| d as usize)
                .sum();
            let definitions = column.nullable.then(|| &column.definitions[start..end]);
            let (skip, take) = if column.nullable {
                (skip, take)
            } else {
                (start, end - start)
            };
            match &column.values {
                Values::Text { data, ends } => {
                    // One copy of these values' bytes, sliced (not copied again) into values.
                    let start_of = |i: usize| if i == 0 { 0 } else { ends[i - 1] };
                    let (from, to) = (start_of(skip), start_of(skip + take));
                    let text = bytes::Bytes::copy_from_slice(&data[from..to]);
                    let values: Vec<ByteArray> = (skip..skip + take)
                        .map(|i| ByteArray::from(text.slice(start_of(i) - from..ends[i] - from)))
                        .collect();
                    out.typed::<ByteArrayType>()
                        .write_batch(&values, definitions, None)
                }
                Values::Integer(v) => {
                    out.typed::<Int64Type>()
                        .write_batch(&v[skip..skip + take], definitions, None)
                }
                Values::Boolean(v) => {
                    out.typed::<BoolType>()
                        .write_batch(&v[skip..skip + take], definitions, None)
                }
            }
            .map_err(io)?;
            out.close().map_err(io)?;
        }
        group.close().map_err(io)?;
        if end == buffer.rows {
            break;
        }
        start = end;
    }
    let file = writer
        .into_inner()
        .map_err(io)?
        .into_inner()
        .map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(file.metadata()?.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lake::columns::{Column, Source};

    #[test]
    fn a_buffer_keeps_nulls_apart_from_values() {
        let shape = Arc::new(TableShape {
            event_type: "t".into(),
            columns: vec![
                Column {
                    name: "sequence".into(),
                    column_type: ColumnType::Integer,
                    source: Source::Sequence,
                    nullable: false,
                },
                Column {
                    name: "name".into(),
                    column_type: ColumnType::Text,
                    source: Source::Field("name".into()),
                    nullable: true,
                },
            ],
            batch: None,
        });
        let mut buffer = TableBuffer::new(shape);
        buffer.push(vec![Cell::Integer(1), Cell::Text("a".into())]);
        buffer.push(vec![Cell::Integer(2), Cell::Null]);
        assert_eq!(buffer.rows(), 2);
        assert_eq!(buffer.columns[1].definitions, [1, 0]);
        assert!(matches!(&buffer.columns[1].values, Values::Text { ends, .. } if ends.len() == 1));
        let dir = std::env::temp_dir().join(format!("onair-lake-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let size = write(&dir.join("a.parquet"), &buffer, 1, 2).unwrap();
        assert!(size > 100);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rows_split_into_row_groups_read_back_as_written() {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::RowAccessor;
        let column = |name: &str, column_type, nullable| Column {
            name: name.into(),
            column_type,
            source: Source::Field(name.into()),
            nullable,
        };
        let shape = Arc::new(TableShape {
            event_type: "t".into(),
            columns: vec![
                column("sequence", ColumnType::Integer, false),
                column("name", ColumnType::Text, true),
                column("seen", ColumnType::Boolean, true),
                column("id", ColumnType::Text, false),
            ],
            batch: None,
        });
        let mut buffer = TableBuffer::new(shape);
        let names = [Some("a"), None, Some("ccc"), None, Some("ee")];
        for (n, name) in names.iter().enumerate() {
            buffer.push(vec![
                Cell::Integer(n as i64),
                name.map_or(Cell::Null, |s| Cell::Text(s.into())),
                if n % 2 == 0 {
                    Cell::Boolean(n == 2)
                } else {
                    Cell::Null
                },
                Cell::Text(format!("id-{n}").into()),
            ]);
        }
        let dir = std::env::temp_dir().join(format!("onair-lake-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("groups.parquet");
        write_in_groups(&path, &buffer, 1, 5, 2).unwrap();
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 3);
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 5);
        for (n, row) in rows.iter().enumerate() {
            assert_eq!(row.get_long(0).unwrap(), n as i64);
            assert_eq!(row.get_string(1).ok().map(String::as_str), names[n]);
            assert_eq!(row.get_bool(2).ok(), (n % 2 == 0).then_some(n == 2));
            assert_eq!(row.get_string(3).unwrap(), &format!("id-{n}"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
