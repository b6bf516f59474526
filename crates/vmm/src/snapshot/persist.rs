//! The contract every device model keeps with snapshots (Firecracker's
//! shape): `save` gives a serializable state, `restore` builds the device
//! again from that state plus what a state file cannot hold (eventfds,
//! the console sink, guest memory, a backing file).

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A device that can be saved into a snapshot and restored from one.
///
/// - `save` runs on the VMM thread while every vCPU is paused, so the
///   device sees no guest access meanwhile; it must not fail (it only
///   copies fields).
/// - `restore` gets a state read from a file that passed the state file's
///   checksum but is otherwise untrusted: it must check every value it
///   relies on (lengths, indexes, addresses) and refuse with an error
///   naming the field rather than panic or build a device that would.
pub trait Persist: Sized {
    /// The serializable state (serde; stored with postcard).
    type State: Serialize + DeserializeOwned;
    /// What restoring needs besides the state.
    type ConstructorArgs;
    /// Why a state is refused.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The device's state now.
    fn save(&self) -> Self::State;

    /// A device in `state`, built with `args`.
    fn restore(args: Self::ConstructorArgs, state: &Self::State) -> Result<Self, Self::Error>;
}
