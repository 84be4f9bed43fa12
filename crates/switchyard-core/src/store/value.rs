//! One SQL value type for both backends, so that queries, migrations and row readers are written
//! once: SQLite's dynamic values and PostgreSQL's typed ones both map onto [`Value`].

use bytes::BytesMut;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (`BIGINT`).
    Int(i64),
    /// A double (`DOUBLE PRECISION`).
    Real(f64),
    /// Text.
    Text(String),
    /// A boolean (an integer 0/1 in SQLite).
    Bool(bool),
}

/// A parameter value borrowed from data that outlives the statement's run (see
/// [`super::Args::Shared`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (`BIGINT`).
    Int(i64),
    /// A double (`DOUBLE PRECISION`).
    Real(f64),
    /// Text.
    Text(&'a str),
    /// A boolean (an integer 0/1 in SQLite).
    Bool(bool),
}

impl<'a> ValueRef<'a> {
    /// An optional string: `NULL` when absent.
    pub fn text(s: Option<&'a str>) -> Self {
        s.map_or(Self::Null, Self::Text)
    }

    /// An owned copy, for a backend that needs one.
    pub fn to_value(self) -> Value {
        match self {
            Self::Null => Value::Null,
            Self::Int(i) => Value::Int(i),
            Self::Real(f) => Value::Real(f),
            Self::Text(s) => Value::Text(s.to_owned()),
            Self::Bool(b) => Value::Bool(b),
        }
    }

    fn sqlite(self) -> rusqlite::types::ValueRef<'a> {
        use rusqlite::types::ValueRef as V;
        match self {
            Self::Null => V::Null,
            Self::Int(i) => V::Integer(i),
            Self::Real(f) => V::Real(f),
            Self::Text(s) => V::Text(s.as_bytes()),
            Self::Bool(b) => V::Integer(i64::from(b)),
        }
    }
}

impl Value {
    /// The value, borrowed.
    pub fn as_value_ref(&self) -> ValueRef<'_> {
        match self {
            Self::Null => ValueRef::Null,
            Self::Int(i) => ValueRef::Int(*i),
            Self::Real(f) => ValueRef::Real(*f),
            Self::Text(s) => ValueRef::Text(s),
            Self::Bool(b) => ValueRef::Bool(*b),
        }
    }

    /// The value as an integer, if it is one (booleans count as 0/1).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            Self::Bool(b) => Some(i64::from(*b)),
            // Whole doubles appear where SQLite folds an aggregate into a REAL.
            Self::Real(f) if f.fract() == 0.0 => Some(*f as i64),
            _ => None,
        }
    }

    /// The value as a double, if it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Real(f) => Some(*f),
            Self::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The value as text, if it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as text, owned.
    pub fn into_string(self) -> Option<String> {
        match self {
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a boolean (SQLite stores them as integers).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            Self::Int(i) => Some(*i != 0),
            _ => None,
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Real(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_owned())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

// === impl for SQLite ===

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(
            self.as_value_ref().sqlite(),
        ))
    }
}

impl rusqlite::ToSql for ValueRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(self.sqlite()))
    }
}

impl Value {
    /// Reads a SQLite column value.
    pub(crate) fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Self {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Self::Null,
            ValueRef::Integer(i) => Self::Int(i),
            ValueRef::Real(f) => Self::Real(f),
            ValueRef::Text(t) | ValueRef::Blob(t) => Self::Text(String::from_utf8_lossy(t).into()),
        }
    }

    /// Reads column `i` of a PostgreSQL row, by the column's type.
    pub(crate) fn from_pg(
        row: &tokio_postgres::Row,
        i: usize,
    ) -> Result<Self, tokio_postgres::Error> {
        let ty = row.columns()[i].type_().clone();
        Ok(if ty == Type::INT8 {
            row.try_get::<_, Option<i64>>(i)?.into()
        } else if ty == Type::INT4 {
            row.try_get::<_, Option<i32>>(i)?.map(i64::from).into()
        } else if ty == Type::INT2 {
            row.try_get::<_, Option<i16>>(i)?.map(i64::from).into()
        } else if ty == Type::FLOAT8 {
            row.try_get::<_, Option<f64>>(i)?.into()
        } else if ty == Type::FLOAT4 {
            row.try_get::<_, Option<f32>>(i)?.map(f64::from).into()
        } else if ty == Type::BOOL {
            row.try_get::<_, Option<bool>>(i)?.into()
        } else {
            // TEXT, VARCHAR, NAME and anything else readable as a string.
            row.try_get::<_, Option<String>>(i)?.into()
        })
    }
}

// === impl for PostgreSQL ===

/// Binds by the parameter type PostgreSQL inferred, so a query written once works whether a
/// placeholder compares against a `BIGINT` or a `DOUBLE PRECISION` column.
impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let mismatch = || -> Box<dyn std::error::Error + Sync + Send> {
            format!("cannot bind {self:?} as {ty}").into()
        };
        match self {
            Self::Null => Ok(IsNull::Yes),
            Self::Text(s) => s.as_str().to_sql(ty, out),
            Self::Bool(b) if *ty == Type::BOOL => b.to_sql(ty, out),
            Self::Bool(b) => Self::Int(i64::from(*b)).to_sql(ty, out),
            Self::Int(i) if *ty == Type::INT8 => i.to_sql(ty, out),
            Self::Int(i) if *ty == Type::INT4 => {
                i32::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out)
            }
            Self::Int(i) if *ty == Type::INT2 => {
                i16::try_from(*i).map_err(|_| mismatch())?.to_sql(ty, out)
            }
            Self::Int(i) if *ty == Type::FLOAT8 => (*i as f64).to_sql(ty, out),
            Self::Int(i) if *ty == Type::BOOL => (*i != 0).to_sql(ty, out),
            Self::Real(f) if *ty == Type::FLOAT8 => f.to_sql(ty, out),
            Self::Real(f) if *ty == Type::FLOAT4 => (*f as f32).to_sql(ty, out),
            Self::Real(f) if *ty == Type::INT8 => (*f as i64).to_sql(ty, out),
            _ => Err(mismatch()),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}
