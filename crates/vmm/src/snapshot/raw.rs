//! KVM's C structures in a snapshot: each is stored as its exact byte image
//! (the kernel ABI layout kvm-bindings mirrors), and read back only when the
//! length is exactly the structure's size. kvm-bindings' own serde support
//! zero-pads or truncates a wrong length; a state file that does not match
//! is refused here instead.

use std::fmt;
use std::marker::PhantomData;

use serde::de::Visitor;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A KVM structure serialized as its bytes.
#[derive(Clone, Copy)]
pub struct Raw<T>(pub T);

impl<T> fmt::Debug for Raw<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Raw<{}>({} bytes)",
            std::any::type_name::<T>(),
            std::mem::size_of::<T>()
        )
    }
}

impl<T> std::ops::Deref for Raw<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: IntoBytes + Immutable> Serialize for Raw<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0.as_bytes())
    }
}

struct RawVisitor<T>(PhantomData<T>);

impl<T: FromBytes> RawVisitor<T> {
    fn from<E: serde::de::Error>(bytes: &[u8]) -> Result<Raw<T>, E> {
        T::read_from_bytes(bytes)
            .map(Raw)
            .map_err(|_| E::invalid_length(bytes.len(), &RawVisitor::<T>(PhantomData)))
    }
}

impl<T: FromBytes> Visitor<'_> for RawVisitor<T> {
    type Value = Raw<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = std::any::type_name::<T>();
        let name = name.rsplit("::").next().unwrap_or(name);
        write!(f, "{} bytes of {name}", std::mem::size_of::<T>())
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Raw<T>, E> {
        Self::from(v)
    }
}

impl<'de, T: FromBytes> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_bytes(RawVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvm_bindings::kvm_regs;

    #[test]
    fn round_trip_and_wrong_lengths_are_refused() {
        let regs = kvm_regs {
            rip: 0x1234,
            rax: 7,
            ..Default::default()
        };
        let bytes = postcard::to_stdvec(&Raw(regs)).expect("encode");
        let back: Raw<kvm_regs> = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back.rip, 0x1234);
        assert_eq!(back.rax, 7);

        // The same bytes one short (length prefix and data).
        let short = postcard::to_stdvec(&Bytes(&regs.as_bytes()[1..])).expect("encode");
        let err = postcard::from_bytes::<Raw<kvm_regs>>(&short).unwrap_err();
        assert!(matches!(err, postcard::Error::SerdeDeCustom), "{err:?}");
        let long = postcard::to_stdvec(&Bytes(&[0u8; 200])).expect("encode");
        assert!(postcard::from_bytes::<Raw<kvm_regs>>(&long).is_err());
    }

    /// Bytes serialized as serde bytes (length-prefixed), like `Raw` does.
    struct Bytes<'a>(&'a [u8]);
    impl Serialize for Bytes<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }
}
