//! The layouts must say exactly what kafka-protocol's decoders read, or the pre-pass would
//! refuse good responses (or miss a bad one). These tests hold them to the decoder itself.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request};

use super::*;
use crate::protocol::{client_range, for_each_decoded_response};

/// The API key of request type `Q`.
fn key<Q: Request>() -> ApiKey {
    ApiKey::try_from(Q::KEY).expect("a known API")
}

/// Bytes kafka-protocol's decoder consumed, or its error.
fn decoded_len<R: Decodable>(body: &[u8], version: i16) -> Result<usize, String> {
    let mut b = Bytes::copy_from_slice(body);
    R::decode(&mut b, version).map_err(|e| e.to_string())?;
    Ok(body.len() - b.len())
}

fn versions(api: ApiKey) -> std::ops::RangeInclusive<i16> {
    let l = &LAYOUTS[root(api).unwrap()];
    l.versions.0..=l.versions.1
}

#[test]
fn every_api_the_client_speaks_has_a_layout_covering_its_versions() {
    macro_rules! check {
        ($($req:ident),*) => {$({
            let api = key::<$req>();
            let (lo, hi) = client_range(api);
            let l = &LAYOUTS[root(api).expect(stringify!($req))];
            assert!(
                l.versions.0 <= lo && hi <= l.versions.1,
                "{api:?}: layout {:?}, client {lo}..={hi}",
                l.versions
            );
        })*};
    }
    for_each_decoded_response!(check);
    assert_eq!(
        check(ApiKey::AlterReplicaLogDirs, 1, &[]),
        Err(Reject::NoLayout)
    );
}

#[test]
fn every_array_element_takes_at_least_one_byte() {
    for l in LAYOUTS {
        for f in l
            .fields
            .iter()
            .map(|f| (f.versions, f.ty))
            .chain(l.tagged.iter().map(|t| {
                // Tagged fields exist only where the section does.
                ((t.versions.0.max(l.tagged_from), t.versions.1), t.ty)
            }))
        {
            if let ((lo, hi), Ty::Arr(e) | Ty::CArr(e)) = f {
                for v in lo..=hi {
                    assert!(min_size(*e, v) >= 1, "{} v{v}: {e:?}", l.name);
                }
            }
        }
    }
}

#[test]
fn default_responses_are_walked_to_their_end() {
    macro_rules! check {
        ($($req:ident),*) => {$({
            let api = key::<$req>();
            for v in versions(api) {
                let mut buf = BytesMut::new();
                <$req as Request>::Response::default().encode(&mut buf, v).unwrap();
                assert_eq!(walked_len(api, v, &buf), Ok(buf.len()), "{api:?} v{v}");
            }
        })*};
    }
    for_each_decoded_response!(check);
}

/// A tiny deterministic generator (xorshift): the tests must be reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn ascii(rng: &mut Rng, n: u64) -> Vec<u8> {
    (0..n).map(|_| b'a' + rng.below(26) as u8).collect()
}

/// A body the layout says is valid: non-null strings and arrays of 0–2 elements, every known
/// tagged field at random, sometimes an unknown one.
fn generate(ty: Ty, v: i16, rng: &mut Rng, out: &mut Vec<u8>) {
    match ty {
        Ty::Fixed(n) => (0..n).for_each(|_| out.push(rng.next() as u8)),
        Ty::Str | Ty::CStr | Ty::Bytes | Ty::CBytes => {
            let n = rng.below(5);
            match ty {
                Ty::Str => out.extend_from_slice(&(n as i16).to_be_bytes()),
                Ty::Bytes => out.extend_from_slice(&(n as i32).to_be_bytes()),
                _ => put_uvarint(out, n as u32 + 1),
            }
            out.extend(ascii(rng, n));
        }
        Ty::Arr(e) => {
            let n = rng.below(3);
            out.extend_from_slice(&(n as i32).to_be_bytes());
            (0..n).for_each(|_| generate(*e, v, rng, out));
        }
        Ty::CArr(e) => {
            let n = rng.below(3);
            put_uvarint(out, n as u32 + 1);
            (0..n).for_each(|_| generate(*e, v, rng, out));
        }
        Ty::Struct(i) => generate_layout(i, v, rng, out),
        Ty::OptStruct(i) => {
            if rng.below(2) == 0 {
                out.push(0xff);
            } else {
                out.push(1);
                generate_layout(i, v, rng, out);
            }
        }
    }
}

fn generate_layout(i: usize, v: i16, rng: &mut Rng, out: &mut Vec<u8>) {
    let l = &LAYOUTS[i];
    for f in l.fields.iter().filter(|f| within(v, f.versions)) {
        generate(f.ty, v, rng, out);
    }
    if v < l.tagged_from {
        return;
    }
    let mut fields = Vec::new();
    for t in l.tagged.iter().filter(|t| within(v, t.versions)) {
        if rng.below(2) == 0 {
            let mut value = Vec::new();
            generate(t.ty, v, rng, &mut value);
            fields.push((t.tag, value));
        }
    }
    if rng.below(3) == 0 {
        let n = rng.below(4);
        fields.push((1000, ascii(rng, n)));
    }
    put_uvarint(out, fields.len() as u32);
    for (tag, value) in fields {
        put_uvarint(out, tag);
        put_uvarint(out, value.len() as u32);
        out.extend(value);
    }
}

/// The strongest check of the layouts: on bodies built from them, with every array, optional
/// struct and tagged field exercised, kafka-protocol's decoder must succeed and stop exactly
/// where the walk stops.
#[test]
fn generated_bodies_decode_exactly_as_walked() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut checked = 0;
    macro_rules! check {
        ($($req:ident),*) => {$({
            let api = key::<$req>();
            for v in versions(api) {
                for _ in 0..200 {
                    let mut body = Vec::new();
                    generate_layout(root(api).unwrap(), v, &mut rng, &mut body);
                    let what = format!("{api:?} v{v} {body:?}");
                    let decoded = decoded_len::<<$req as Request>::Response>(&body, v);
                    assert_eq!(decoded, Ok(body.len()), "{what}");
                    assert_eq!(walked_len(api, v, &body), Ok(body.len()), "{what}");
                    checked += 1;
                }
            }
        })*};
    }
    for_each_decoded_response!(check);
    assert!(checked > 20 * 200, "{checked}");
}

#[test]
fn an_array_claiming_more_than_the_body_holds_is_rejected_before_decoding() {
    // ApiVersions v3: error code, then a compact array claiming 2^32 - 2 entries: the 15-byte
    // reply that made kafka-protocol reserve 137 GB and abort the process.
    let body = [0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(
        check(ApiKey::ApiVersions, 3, &body),
        Err(Reject::OverClaim {
            within: "ApiVersionsResponse",
            count: u32::MAX as u64 - 1,
            remaining: 8
        })
    );
    // v0: a plain i32 count. Each ApiVersion is 6 bytes, so 2 of them need 12 bytes.
    let mut body = vec![0, 0, 0, 0, 0, 2];
    body.extend_from_slice(&[0; 11]);
    assert!(matches!(
        check(ApiKey::ApiVersions, 0, &body),
        Err(Reject::OverClaim { count: 2, .. })
    ));
    body.push(0);
    assert_eq!(check(ApiKey::ApiVersions, 0, &body), Ok(()));
}

#[test]
fn a_nested_over_claim_is_found() {
    // Metadata v1: no brokers, controller id, one topic whose partition array claims 10^9.
    let mut body = vec![0, 0, 0, 0]; // brokers: []
    body.extend_from_slice(&[0, 0, 0, 1]); // controller id
    body.extend_from_slice(&[0, 0, 0, 1]); // one topic
    body.extend_from_slice(&[0, 0, 0, 1, b't', 0]); // error, name "t", is_internal
    body.extend_from_slice(&1_000_000_000i32.to_be_bytes());
    body.extend_from_slice(&[0; 64]);
    assert!(matches!(
        check(ApiKey::Metadata, 1, &body),
        Err(Reject::OverClaim {
            within: "MetadataResponseTopic",
            count: 1_000_000_000,
            ..
        })
    ));
}

#[test]
fn an_absurd_tagged_field_count_ends_with_the_body() {
    // ApiVersions v3 with no entries and a tagged section claiming 2^32 - 1 fields.
    let body = [0, 0, 1, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert_eq!(check(ApiKey::ApiVersions, 3, &body), Err(Reject::Truncated));
}

#[test]
fn versions_outside_the_layout_are_refused() {
    assert_eq!(
        check(ApiKey::Fetch, 2, &[0; 64]),
        Err(Reject::Version("FetchResponse"))
    );
}
