//! Writing CDM records the way TC performers do (Avro JSON encoding, one
//! datum per line), in the shape of each schema version: CDM 18 keeps
//! `hostId` in the records, CDM 19/20 in the datum wrapper, with the record
//! type and session number.
#![allow(dead_code)]

use serde_json::{json, Map, Value};

pub const HOST: &str = "E621F964-5A66-0F89-30E0-67ADB2A5EC28";

pub struct Cdm {
    pub ver: u32,
    pub lines: Vec<String>,
    pub session: i64,
}

/// A UUID with `n` in its last digits (readable in failures).
pub fn u(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012X}")
}

impl Cdm {
    pub fn new(ver: u32) -> Cdm {
        Cdm {
            ver,
            lines: Vec::new(),
            session: 0,
        }
    }

    fn ns(&self) -> String {
        format!("com.bbn.tc.schema.avro.cdm{}", self.ver)
    }

    /// A union-wrapped UUID reference.
    pub fn r(&self, n: u64) -> Value {
        json!({ format!("{}.UUID", self.ns()): u(n) })
    }

    pub fn s(v: &str) -> Value {
        json!({ "string": v })
    }

    pub fn long(v: i64) -> Value {
        json!({ "long": v })
    }

    pub fn int(v: i64) -> Value {
        json!({ "int": v })
    }

    fn record_type(ty: &str) -> String {
        let mut out = String::from("RECORD");
        for (i, c) in ty.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_uppercase());
        }
        out.replace("RECORD", "RECORD_")
            .replace("RECORD__", "RECORD_")
    }

    pub fn push(&mut self, ty: &str, body: Value) {
        let mut datum = Map::new();
        datum.insert(format!("{}.{}", self.ns(), ty), body);
        let mut line = Map::new();
        line.insert("datum".into(), Value::Object(datum));
        line.insert("CDMVersion".into(), json!(self.ver.to_string()));
        if self.ver >= 19 {
            line.insert("type".into(), json!(Self::record_type(ty)));
            line.insert("hostId".into(), json!(HOST));
            line.insert("sessionNumber".into(), json!(self.session));
        }
        line.insert("source".into(), json!("SOURCE_LINUX_SYSCALL_TRACE"));
        self.lines.push(Value::Object(line).to_string());
    }

    pub fn raw(&mut self, s: &str) {
        self.lines.push(s.to_string());
    }

    fn with_host(&self, mut v: Value) -> Value {
        if self.ver == 18 {
            v["hostId"] = json!(HOST);
        }
        v
    }

    pub fn host(&mut self) {
        let v = json!({
            "uuid": HOST, "hostName": "web-1",
            "hostIdentifiers": if self.ver == 18 { json!([]) } else { json!({"array": []}) },
            "osDetails": if self.ver == 18 { json!("Linux 4.4") } else { Self::s("Linux 4.4") },
            "hostType": "HOST_SERVER",
            "interfaces": if self.ver == 18 { json!([]) } else { json!(null) }
        });
        self.push("Host", v);
    }

    pub fn principal(&mut self, id: u64, uid: &str, gid: &str) {
        let groups = if self.ver == 18 {
            json!([gid])
        } else {
            json!({ "array": [gid] })
        };
        let v = self.with_host(json!({
            "uuid": u(id), "type": "PRINCIPAL_LOCAL", "userId": uid,
            "username": Self::s("user"), "groupIds": groups,
            "properties": {"map": {"euid": uid}}
        }));
        self.push("Principal", v);
    }

    #[allow(clippy::too_many_arguments)]
    pub fn subject(
        &mut self,
        id: u64,
        kind: &str,
        cid: i64,
        parent: Option<u64>,
        principal: u64,
        cmd: Option<&str>,
        name: &str,
    ) {
        let start = if self.ver == 18 {
            json!(1_523_627_788_000_000_000i64)
        } else {
            Self::long(1_523_627_788_000_000_000)
        };
        let v = self.with_host(json!({
            "uuid": u(id), "type": kind, "cid": cid,
            "parentSubject": parent.map(|p| self.r(p)),
            "localPrincipal": if self.ver == 18 { json!(u(principal)) } else { self.r(principal) },
            "startTimestampNanos": start,
            "unitId": Self::int(0), "iteration": null, "count": null,
            "cmdLine": cmd.map(Self::s),
            "privilegeLevel": null, "importedLibraries": null, "exportedLibraries": null,
            "properties": {"map": {"name": name, "ppid": "1"}}
        }));
        self.push("Subject", v);
    }

    fn base(&self, path: Option<&str>) -> Value {
        let props = match path {
            Some(p) => json!({"map": {"path": p}}),
            None => json!({"map": {}}),
        };
        let mut b = json!({"permission": null, "epoch": Self::int(0), "properties": props});
        if self.ver == 18 {
            b["hostId"] = json!(HOST);
        }
        b
    }

    pub fn file(&mut self, id: u64, kind: &str, path: Option<&str>) {
        let v = json!({
            "uuid": u(id), "baseObject": self.base(path), "type": kind,
            "fileDescriptor": null, "localPrincipal": null, "size": null,
            "peInfo": null, "hashes": null
        });
        self.push("FileObject", v);
    }

    pub fn netflow(&mut self, id: u64, local: (&str, i64), remote: (&str, i64), proto: i64) {
        let v = if self.ver == 18 {
            json!({
                "uuid": u(id), "baseObject": self.base(None),
                "localAddress": local.0, "localPort": local.1,
                "remoteAddress": remote.0, "remotePort": remote.1,
                "ipProtocol": Self::int(proto), "fileDescriptor": null
            })
        } else {
            json!({
                "uuid": u(id), "baseObject": self.base(None),
                "localAddress": Self::s(local.0), "localPort": Self::int(local.1),
                "remoteAddress": Self::s(remote.0), "remotePort": Self::int(remote.1),
                "ipProtocol": Self::int(proto), "fileDescriptor": null
            })
        };
        self.push("NetFlowObject", v);
    }

    /// UnnamedPipeObject (CDM 18) or IpcObject IPC_OBJECT_PIPE_UNNAMED.
    pub fn pipe(&mut self, id: u64) {
        if self.ver == 18 {
            let v = json!({
                "uuid": u(id), "baseObject": self.base(None),
                "sourceFileDescriptor": Self::int(3), "sinkFileDescriptor": Self::int(4),
                "sourceUUID": null, "sinkUUID": null
            });
            self.push("UnnamedPipeObject", v);
        } else {
            let v = json!({
                "uuid": u(id), "baseObject": self.base(None),
                "type": "IPC_OBJECT_PIPE_UNNAMED",
                "uuid1": self.r(id + 1), "uuid2": self.r(id + 2),
                "fd1": Self::int(3), "fd2": Self::int(4)
            });
            self.push("IpcObject", v);
        }
    }

    pub fn ipc_socketpair(&mut self, id: u64) {
        let v = json!({
            "uuid": u(id), "baseObject": self.base(None),
            "type": "IPC_OBJECT_SOCKET_PAIR",
            "uuid1": null, "uuid2": null, "fd1": Self::int(5), "fd2": Self::int(6)
        });
        self.push("IpcObject", v);
    }

    pub fn srcsink(&mut self, id: u64) {
        let v = json!({
            "uuid": u(id), "baseObject": self.base(None),
            "type": "SRCSINK_UNKNOWN", "fileDescriptor": Self::int(0)
        });
        self.push("SrcSinkObject", v);
    }

    pub fn memory(&mut self, id: u64) {
        let v = json!({
            "uuid": u(id), "baseObject": self.base(None),
            "memoryAddress": 140_000_000i64, "pageNumber": null, "pageOffset": null,
            "size": Self::long(4096)
        });
        self.push("MemoryObject", v);
    }

    pub fn time_marker(&mut self, ts: i64) {
        self.push("TimeMarker", json!({"tsNanos": ts}));
    }

    /// An Event record: `(type, subject, object, object path, object2,
    /// object2 path, size, properties)`.
    #[allow(clippy::too_many_arguments)]
    pub fn event(
        &mut self,
        id: u64,
        ty: &str,
        subject: u64,
        thread: i64,
        obj: Option<u64>,
        path: Option<&str>,
        obj2: Option<u64>,
        path2: Option<&str>,
        ts: i64,
        size: Option<i64>,
        props: Value,
    ) {
        let mut v = json!({
            "uuid": u(id), "sequence": Self::long(id as i64), "type": ty,
            "threadId": Self::int(thread),
            "subject": self.r(subject),
            "predicateObject": obj.map(|o| self.r(o)),
            "predicateObjectPath": path.map(Self::s),
            "predicateObject2": obj2.map(|o| self.r(o)),
            "predicateObject2Path": path2.map(Self::s),
            "timestampNanos": ts,
            "parameters": null, "location": null,
            "size": size.map(Self::long),
            "programPoint": null,
            "properties": {"map": props}
        });
        if self.ver == 18 {
            v["hostId"] = json!(HOST);
            v["name"] = json!(null);
        } else {
            v["names"] = json!({"array": [ty.trim_start_matches("EVENT_").to_lowercase()]});
        }
        self.push("Event", v);
    }

    /// A simple event: subject acts on one object.
    pub fn ev(&mut self, id: u64, ty: &str, subject: u64, obj: Option<u64>, ts: i64) {
        self.event(
            id,
            ty,
            subject,
            0,
            obj,
            None,
            None,
            None,
            ts,
            None,
            json!({}),
        )
    }

    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        s.push('\n');
        s
    }
}
