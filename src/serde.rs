//! Typed keys and values: the producer's `Serializer` and the consumer's `Deserializer`.
//!
//! Records carry `Bytes`; a serializer turns an application type into them once, before the
//! record is handed to the producer, and a deserializer turns them back when the application
//! asks, so neither hot path ever sees generic types.

use bytes::Bytes;

use crate::consumer::ConsumerRecord;
use crate::error::{Error, Result};
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

/// Turns the bytes of a consumed key or value into a `T`.
///
/// ```
/// use bytes::Bytes;
/// use ferrokafka::Deserializer;
///
/// struct Celsius;
/// impl Deserializer<f64> for Celsius {
///     fn deserialize(&self, topic: &str, data: &Bytes) -> ferrokafka::Result<f64> {
///         std::str::from_utf8(data)
///             .ok()
///             .and_then(|s| s.trim_end_matches('C').parse().ok())
///             .ok_or_else(|| ferrokafka::Error::InvalidInput(format!("not a temperature in {topic}").into()))
///     }
/// }
/// assert_eq!(Celsius.deserialize("temps", &Bytes::from("21.5C")).unwrap(), 21.5);
/// ```
pub trait Deserializer<T> {
    /// Deserializes `data`, a key or value consumed from `topic`.
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<T>;
}

/// UTF-8 strings; invalid UTF-8 is an [`Error::InvalidInput`] naming the topic.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringDeserializer;

impl Deserializer<String> for StringDeserializer {
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<String> {
        String::from_utf8(data.to_vec()).map_err(|e| {
            Error::InvalidInput(format!("a record of {topic} is not UTF-8: {e}").into())
        })
    }
}

/// Big-endian integers, as the Java client's `LongDeserializer`/`IntegerDeserializer`; a
/// wrong length is an [`Error::InvalidInput`].
#[derive(Debug, Clone, Copy, Default)]
pub struct BigEndianDeserializer;

impl Deserializer<i64> for BigEndianDeserializer {
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<i64> {
        let b: [u8; 8] = data.as_ref().try_into().map_err(|_| {
            Error::InvalidInput(
                format!("a record of {topic} has {} bytes, not 8", data.len()).into(),
            )
        })?;
        Ok(i64::from_be_bytes(b))
    }
}

impl Deserializer<i32> for BigEndianDeserializer {
    fn deserialize(&self, topic: &str, data: &Bytes) -> Result<i32> {
        let b: [u8; 4] = data.as_ref().try_into().map_err(|_| {
            Error::InvalidInput(
                format!("a record of {topic} has {} bytes, not 4", data.len()).into(),
            )
        })?;
        Ok(i32::from_be_bytes(b))
    }
}

impl ConsumerRecord {
    /// The key deserialized by `deserializer` (`None` for a null key).
    pub fn deserialize_key<T, D: Deserializer<T>>(&self, deserializer: &D) -> Result<Option<T>> {
        self.key
            .as_ref()
            .map(|k| deserializer.deserialize(&self.topic, k))
            .transpose()
    }

    /// The value deserialized by `deserializer` (`None` for a null value).
    pub fn deserialize_value<T, D: Deserializer<T>>(&self, deserializer: &D) -> Result<Option<T>> {
        self.value
            .as_ref()
            .map(|v| deserializer.deserialize(&self.topic, v))
            .transpose()
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

    #[test]
    fn built_in_deserializers_mirror_the_serializers() {
        let v = BigEndianSerializer.serialize("t", &-5i64).unwrap();
        let back: i64 = BigEndianDeserializer.deserialize("t", &v).unwrap();
        assert_eq!(back, -5);
        let e = <BigEndianDeserializer as Deserializer<i32>>::deserialize(
            &BigEndianDeserializer,
            "t",
            &v,
        )
        .unwrap_err();
        assert!(e.to_string().contains("8 bytes, not 4"), "{e}");
        let s = StringSerializer.serialize("t", "héllo").unwrap();
        assert_eq!(StringDeserializer.deserialize("t", &s).unwrap(), "héllo");
        let bad = StringDeserializer
            .deserialize("orders", &Bytes::from_static(&[0xff, 0xfe]))
            .unwrap_err();
        assert!(bad.to_string().contains("orders"), "{bad}");
    }
}
