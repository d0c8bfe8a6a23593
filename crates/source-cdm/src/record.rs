//! One line of a CDM JSON file → one [`Record`].
//!
//! The files are Avro's JSON encoding of `TCCDMDatum`: one object per line,
//! the record type as the single key of `datum`
//! (`{"datum":{"com.bbn.tc.schema.avro.cdm18.Subject":{…}},"CDMVersion":"18",…}`),
//! and every optional field a union written as `null` or
//! `{"<branch type>": value}` (`{"string":"…"}`, `{"long":5}`,
//! `{"com.bbn.tc.schema.avro.cdm18.UUID":"…"}`, `{"map":{…}}`). Writers
//! differ (some leave unions unwrapped, CDM 19 moved `hostId` from the
//! records to the datum), so every field here accepts the wrapped and the
//! bare form, and missing optional fields are `None`.
//!
//! Field names follow the public schema (`TCCDMDatum.avdl`, CDM 18/19/20);
//! unknown fields are ignored.

use serde::de::{self, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use std::marker::PhantomData;

/// A CDM UUID (Avro `fixed UUID(16)`), as a number.
pub type Uuid = u128;

/// An optional (union) field: `null`, a bare value, or `{"<type>": value}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Opt<T>(pub Option<T>);

impl<T> Default for Opt<T> {
    fn default() -> Self {
        Opt(None)
    }
}

impl<T> Opt<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

/// Avro union branch names (or named types, which contain a dot).
fn is_branch_tag(k: &str) -> bool {
    matches!(
        k,
        "string" | "long" | "int" | "boolean" | "bytes" | "double" | "float" | "map" | "array"
    ) || k.contains('.')
}

struct OptVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for OptVisitor<T> {
    type Value = Opt<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("null, a value, or a union {\"<type>\": value}")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Opt(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Opt(None))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(|t| Opt(Some(t)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(|t| Opt(Some(t)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(|t| Opt(Some(t)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(|t| Opt(Some(t)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(|t| Opt(Some(t)))
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        T::deserialize(de::value::BorrowedStrDeserializer::new(v)).map(|t| Opt(Some(t)))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        T::deserialize(v.into_deserializer()).map(|t| Opt(Some(t)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(|t| Opt(Some(t)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let Some(k) = map.next_key::<Tag>()? else {
            return Ok(Opt(None));
        };
        if !k.0 {
            return Err(de::Error::custom(
                "expected a union value {\"<type>\": value}",
            ));
        }
        let v = map.next_value::<T>()?;
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Opt(Some(v)))
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Opt<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OptVisitor(PhantomData))
    }
}

/// A map key, checked to be a union branch name without keeping it.
struct Tag(bool);

impl<'de> Deserialize<'de> for Tag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Tag;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
                Ok(Tag(is_branch_tag(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A UUID field: `"8-4-4-4-12"` (or 32 hex digits), or the 16 raw bytes as
/// Avro's JSON encoder writes `fixed` (one char per byte, U+0000..U+00FF);
/// bare or wrapped in `{"…UUID": …}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UuidV(pub Uuid);

/// Hex digit values; 0xff for anything else.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

pub fn parse_uuid(s: &str) -> Option<Uuid> {
    let b = s.as_bytes();
    // Four UUIDs a line: this runs millions of times per import.
    let digits = |part: &[u8], acc: &mut u64| -> bool {
        for &c in part {
            let h = HEX[c as usize];
            if h == 0xff {
                return false;
            }
            *acc = (*acc << 4) | h as u64;
        }
        true
    };
    let (mut hi, mut lo) = (0u64, 0u64);
    let ok = match b.len() {
        36 => {
            b[8] == b'-'
                && b[13] == b'-'
                && b[18] == b'-'
                && b[23] == b'-'
                && digits(&b[0..8], &mut hi)
                && digits(&b[9..13], &mut hi)
                && digits(&b[14..18], &mut hi)
                && digits(&b[19..23], &mut lo)
                && digits(&b[24..36], &mut lo)
        }
        32 => digits(&b[..16], &mut hi) && digits(&b[16..], &mut lo),
        _ => false,
    };
    if ok {
        return Some(((hi as u128) << 64) | lo as u128);
    }
    // Avro's JSON encoding of `fixed`: one char (U+0000..U+00FF) per byte.
    let mut v: u128 = 0;
    let mut n = 0;
    for ch in s.chars() {
        let c = ch as u32;
        if c > 0xff || n == 16 {
            return None;
        }
        v = (v << 8) | c as u128;
        n += 1;
    }
    (n == 16).then_some(v)
}

impl<'de> Deserialize<'de> for UuidV {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UuidV;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a UUID")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<UuidV, E> {
                parse_uuid(v)
                    .map(UuidV)
                    .ok_or_else(|| E::custom(format!("{v:?} is not a UUID")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UuidV, A::Error> {
                if map.next_key::<Tag>()?.is_none() {
                    return Err(de::Error::custom("empty object where a UUID belongs"));
                }
                let v = map.next_value::<UuidV>()?;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(v)
            }
        }
        d.deserialize_any(V)
    }
}

/// `properties` (`union {null, map<string>}`): key/value pairs; values that
/// are not strings are kept as their JSON text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Props(pub Vec<(String, String)>);

impl Props {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    /// The first of `keys` that is present.
    pub fn any(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.get(k))
    }
}

enum PropVal {
    Str(String),
    Map(Vec<(String, String)>),
    None,
}

impl<'de> Deserialize<'de> for PropVal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PropVal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a property value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<PropVal, E> {
                Ok(PropVal::None)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<PropVal, E> {
                Ok(PropVal::Str(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<PropVal, E> {
                Ok(PropVal::Str(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<PropVal, E> {
                Ok(PropVal::Str(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<PropVal, E> {
                Ok(PropVal::Str(v.to_string()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<PropVal, E> {
                Ok(PropVal::Str(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<PropVal, E> {
                Ok(PropVal::Str(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PropVal, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(PropVal::None)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PropVal, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    if let PropVal::Str(v) = map.next_value::<PropVal>()? {
                        out.push((k, v));
                    }
                }
                Ok(PropVal::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// How `properties` is decoded: the `{"map": …}` union wrapper or a bare
/// map, into [`Props`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties(pub Props);

impl<'de> Deserialize<'de> for Properties {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Properties;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("null or a map of properties")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Properties, E> {
                Ok(Properties::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Properties, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    match map.next_value::<PropVal>()? {
                        PropVal::Str(v) => out.push((k, v)),
                        // The union wrapper {"map": {...}}.
                        PropVal::Map(inner) if k == "map" => out.extend(inner),
                        _ => {}
                    }
                }
                Ok(Properties(Props(out)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A plain array or an `{"array": [...]}` union.
pub type List<T> = Opt<Vec<T>>;

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Host {
    pub uuid: Option<UuidV>,
    pub host_name: Opt<String>,
    pub os_details: Opt<String>,
    pub host_type: Opt<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Principal {
    pub uuid: Option<UuidV>,
    pub host_id: Opt<UuidV>,
    pub user_id: Opt<String>,
    pub username: Opt<String>,
    pub group_ids: List<String>,
    pub properties: Properties,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Subject {
    pub uuid: Option<UuidV>,
    #[serde(rename = "type")]
    pub kind: Opt<String>,
    pub cid: Opt<i64>,
    pub parent_subject: Opt<UuidV>,
    pub host_id: Opt<UuidV>,
    pub local_principal: Opt<UuidV>,
    pub start_timestamp_nanos: Opt<i64>,
    pub cmd_line: Opt<String>,
    pub properties: Properties,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct BaseObject {
    pub host_id: Opt<UuidV>,
    pub epoch: Opt<i64>,
    pub properties: Properties,
}

/// FileObject, UnnamedPipeObject (CDM 18), IpcObject (CDM 19/20),
/// NetFlowObject, SrcSinkObject, and the object records Tomo does not map
/// (MemoryObject, RegistryKeyObject, PacketSocketObject): one shape with
/// every field optional.
#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Object {
    pub uuid: Option<UuidV>,
    pub base_object: Option<BaseObject>,
    #[serde(rename = "type")]
    pub kind: Opt<String>,
    pub file_descriptor: Opt<i64>,
    pub local_principal: Opt<UuidV>,
    // NetFlowObject
    pub local_address: Opt<String>,
    pub local_port: Opt<i64>,
    pub remote_address: Opt<String>,
    pub remote_port: Opt<i64>,
    pub ip_protocol: Opt<i64>,
    // UnnamedPipeObject (CDM 18)
    pub source_file_descriptor: Opt<i64>,
    pub sink_file_descriptor: Opt<i64>,
    #[serde(rename = "sourceUUID")]
    pub source_uuid: Opt<UuidV>,
    #[serde(rename = "sinkUUID")]
    pub sink_uuid: Opt<UuidV>,
    // IpcObject (CDM 19/20)
    pub uuid1: Opt<UuidV>,
    pub uuid2: Opt<UuidV>,
    pub fd1: Opt<i64>,
    pub fd2: Opt<i64>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct Event {
    pub uuid: Option<UuidV>,
    pub sequence: Opt<i64>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub thread_id: Opt<i64>,
    pub host_id: Opt<UuidV>,
    pub subject: Opt<UuidV>,
    pub predicate_object: Opt<UuidV>,
    pub predicate_object_path: Opt<String>,
    pub predicate_object2: Opt<UuidV>,
    pub predicate_object2_path: Opt<String>,
    pub timestamp_nanos: Opt<i64>,
    /// CDM 18: one name.
    pub name: Opt<String>,
    /// CDM 19/20: several.
    pub names: List<String>,
    pub location: Opt<i64>,
    pub size: Opt<i64>,
    pub properties: Properties,
}

/// What the `datum` union held.
#[derive(Debug)]
pub enum Datum {
    Host(Host),
    Principal(Principal),
    Subject(Box<Subject>),
    /// The short record name (FileObject, NetFlowObject, …) and the record.
    Object(ObjectType, Box<Object>),
    Event(Box<Event>),
    /// A record type Tomo does not map (markers, tags, unit dependencies),
    /// by its short name.
    Other(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    File,
    UnnamedPipe,
    Ipc,
    NetFlow,
    SrcSink,
    Memory,
    RegistryKey,
    PacketSocket,
}

impl ObjectType {
    pub fn name(self) -> &'static str {
        match self {
            ObjectType::File => "FileObject",
            ObjectType::UnnamedPipe => "UnnamedPipeObject",
            ObjectType::Ipc => "IpcObject",
            ObjectType::NetFlow => "NetFlowObject",
            ObjectType::SrcSink => "SrcSinkObject",
            ObjectType::Memory => "MemoryObject",
            ObjectType::RegistryKey => "RegistryKeyObject",
            ObjectType::PacketSocket => "PacketSocketObject",
        }
    }
}

/// The record kind of a datum key (`com.bbn.tc.schema.avro.cdm18.Subject`
/// or just `Subject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Host,
    Principal,
    Subject,
    Object(ObjectType),
    Event,
    Other,
}

pub fn kind_of(type_name: &str) -> Kind {
    let short = type_name.rsplit('.').next().unwrap_or(type_name);
    match short {
        "Host" => Kind::Host,
        "Principal" => Kind::Principal,
        "Subject" => Kind::Subject,
        "Event" => Kind::Event,
        "FileObject" => Kind::Object(ObjectType::File),
        "UnnamedPipeObject" => Kind::Object(ObjectType::UnnamedPipe),
        "IpcObject" => Kind::Object(ObjectType::Ipc),
        "NetFlowObject" => Kind::Object(ObjectType::NetFlow),
        "SrcSinkObject" => Kind::Object(ObjectType::SrcSink),
        "MemoryObject" => Kind::Object(ObjectType::Memory),
        "RegistryKeyObject" => Kind::Object(ObjectType::RegistryKey),
        "PacketSocketObject" => Kind::Object(ObjectType::PacketSocket),
        _ => Kind::Other,
    }
}

impl<'de> Deserialize<'de> for Datum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Datum;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {\"<record type>\": {…}}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Datum, A::Error> {
                let Some(name) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("datum is empty"));
                };
                let short = name.rsplit('.').next().unwrap_or(&name).to_string();
                let d = match kind_of(&name) {
                    Kind::Host => Datum::Host(map.next_value()?),
                    Kind::Principal => Datum::Principal(map.next_value()?),
                    Kind::Subject => Datum::Subject(Box::new(map.next_value()?)),
                    Kind::Event => Datum::Event(Box::new(map.next_value()?)),
                    Kind::Object(t) => Datum::Object(t, Box::new(map.next_value()?)),
                    Kind::Other => {
                        map.next_value::<IgnoredAny>()?;
                        Datum::Other(short)
                    }
                };
                if map.next_key::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("datum has more than one record"));
                }
                Ok(d)
            }
        }
        d.deserialize_map(V)
    }
}

/// One line: the datum and the fields CDM 19/20 moved into the wrapper.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Line {
    pub datum: Datum,
    #[serde(rename = "CDMVersion", default)]
    pub cdm_version: Opt<String>,
    #[serde(default)]
    pub host_id: Opt<UuidV>,
    #[serde(default)]
    pub session_number: Opt<i64>,
}

/// Decode one line.
pub fn parse_line(line: &str) -> Result<Line, String> {
    serde_json::from_str::<Line>(line).map_err(|e| {
        let m = e.to_string();
        // serde_json says "at line 1 column N": the line is ours to name.
        match m.rfind(" at line 1 column ") {
            Some(i) => format!("{} (column {})", &m[..i], &m[i + 18..]),
            None => m,
        }
    })
}

/// The record type of a line without decoding it, from the `datum` key,
/// when the line starts the usual way (`{"datum":{"<type>"`). Used to skip
/// the lines a pass does not need.
pub fn sniff_kind(line: &str) -> Option<Kind> {
    let rest = line.trim_start().strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix("\"datum\"")?.trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('{')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let end = rest.find('"')?;
    let name = &rest[..end];
    if name.contains('\\') {
        return None;
    }
    Some(kind_of(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unions_bare_and_wrapped() {
        #[derive(Deserialize)]
        struct T {
            a: Opt<i64>,
            b: Opt<String>,
            c: Opt<UuidV>,
            d: List<String>,
        }
        let t: T = serde_json::from_str(
            r#"{"a":{"long":5},"b":{"string":"x"},"c":{"com.bbn.tc.schema.avro.cdm18.UUID":"753366C8-7B00-E70F-1E95-2102227BD6E1"},"d":{"array":["1","2"]}}"#,
        )
        .unwrap();
        assert_eq!(t.a.0, Some(5));
        assert_eq!(t.b.0.as_deref(), Some("x"));
        assert_eq!(t.c.0.unwrap().0, 0x753366C87B00E70F1E952102227BD6E1);
        assert_eq!(t.d.0.unwrap(), ["1", "2"]);
        let t: T = serde_json::from_str(r#"{"a":5,"b":"x","c":null,"d":["1"]}"#).unwrap();
        assert_eq!((t.a.0, t.b.0.as_deref(), t.c.0), (Some(5), Some("x"), None));
        assert!(
            serde_json::from_str::<T>(r#"{"a":{"nope":1},"b":null,"c":null,"d":null}"#).is_err()
        );
    }

    #[test]
    fn uuid_forms() {
        assert_eq!(parse_uuid("00000000-0000-0000-0000-00000000000a"), Some(10));
        assert_eq!(parse_uuid("0000000000000000000000000000000A"), Some(10));
        assert_eq!(
            parse_uuid(
                "\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{0}\u{1}\u{ff}"
            ),
            Some(0x1ff)
        );
        assert_eq!(parse_uuid("xyz"), None);
        // 16 raw bytes that are 32 bytes of UTF-8.
        assert_eq!(parse_uuid(&"\u{ff}".repeat(16)), Some(u128::MAX));
        assert_eq!(parse_uuid("00000000-0000-0000-0000-00000000000g"), None);
    }

    #[test]
    fn properties_forms() {
        #[derive(Deserialize)]
        struct T {
            p: Properties,
        }
        let t: T = serde_json::from_str(r#"{"p":{"map":{"path":"/x","n":"1"}}}"#).unwrap();
        assert_eq!(t.p.0.get("path"), Some("/x"));
        let t: T = serde_json::from_str(r#"{"p":{"path":"/y","k":3}}"#).unwrap();
        assert_eq!((t.p.0.get("path"), t.p.0.get("k")), (Some("/y"), Some("3")));
        let t: T = serde_json::from_str(r#"{"p":null}"#).unwrap();
        assert!(t.p.0 .0.is_empty());
    }

    #[test]
    fn sniff() {
        assert_eq!(
            sniff_kind(r#"{"datum":{"com.bbn.tc.schema.avro.cdm18.Event":{"uuid":"x"}}}"#),
            Some(Kind::Event)
        );
        assert_eq!(
            sniff_kind(r#"{ "datum" : { "com.bbn.tc.schema.avro.cdm20.FileObject":{}}}"#),
            Some(Kind::Object(ObjectType::File))
        );
        assert_eq!(sniff_kind(r#"{"CDMVersion":"18","datum":{}}"#), None);
    }
}
