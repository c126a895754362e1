//! Typed keys and values: the producer's `Serializer` (the consumer's `Deserializer` mirrors it).
//!
//! Records carry `Bytes`; a serializer turns an application type into them once, before the
//! record is handed to the producer, so the producer's hot path never sees generic types.

use bytes::Bytes;

use crate::error::Result;
use crate::record::Record;

/// Turns a `T` into the bytes of a record key or value.
///
/// ```
/// use bytes::Bytes;
/// use ferrokafka::{Record, Serializer};
///
/// struct Celsius;
/// impl Serializer<f64> for Celsius {
///     fn serialize(&self, _topic: &str, v: &f64) -> ferrokafka::Result<Bytes> {
///         Ok(Bytes::from(format!("{v:.1}C")))
///     }
/// }
/// let r = Record::new("temps").serialize_value(&Celsius, &21.5).unwrap();
/// assert_eq!(r.value.unwrap(), "21.5C");
/// ```
pub trait Serializer<T: ?Sized> {
    /// Serializes `value` for `topic`.
    fn serialize(&self, topic: &str, value: &T) -> Result<Bytes>;
}

/// UTF-8 strings as their bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerializer;

impl Serializer<str> for StringSerializer {
    fn serialize(&self, _topic: &str, value: &str) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }
}

impl Serializer<String> for StringSerializer {
    fn serialize(&self, _topic: &str, value: &String) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(value.as_bytes()))
    }
}

/// Integers as big-endian bytes, as the Java client's `LongSerializer`/`IntegerSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BigEndianSerializer;

impl Serializer<i64> for BigEndianSerializer {
    fn serialize(&self, _topic: &str, value: &i64) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(&value.to_be_bytes()))
    }
}

impl Serializer<i32> for BigEndianSerializer {
    fn serialize(&self, _topic: &str, value: &i32) -> Result<Bytes> {
        Ok(Bytes::copy_from_slice(&value.to_be_bytes()))
    }
}

impl Record {
    /// Sets the key to `key` serialized by `serializer`.
    pub fn serialize_key<T: ?Sized, S: Serializer<T>>(
        mut self,
        serializer: &S,
        key: &T,
    ) -> Result<Record> {
        self.key = Some(serializer.serialize(&self.topic, key)?);
        Ok(self)
    }

    /// Sets the value to `value` serialized by `serializer`.
    pub fn serialize_value<T: ?Sized, S: Serializer<T>>(
        mut self,
        serializer: &S,
        value: &T,
    ) -> Result<Record> {
        self.value = Some(serializer.serialize(&self.topic, value)?);
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_serializers() {
        let r = Record::new("t")
            .serialize_key(&StringSerializer, "k")
            .unwrap()
            .serialize_value(&BigEndianSerializer, &258i32)
            .unwrap();
        assert_eq!(r.key.unwrap(), "k");
        assert_eq!(r.value.unwrap().as_ref(), &[0, 0, 1, 2]);
    }
}
