//! A small synchronous rtnetlink client: one request, then its replies
//! (an acknowledgement, or the messages of a dump), on a socket of the
//! network namespace it was opened in.

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use crate::error::{NetError, Result};

/// A route netlink socket.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    sequence: u32,
}

impl Netlink {
    /// A socket in the calling thread's network namespace. It stays in that
    /// namespace when the thread moves to another (see [`crate::netns`]).
    pub fn open() -> Result<Netlink> {
        let op = || "open a route netlink socket".to_owned();
        let mut socket =
            Socket::new(NETLINK_ROUTE).map_err(|source| NetError::Netlink { op: op(), source })?;
        socket
            .bind_auto()
            .map_err(|source| NetError::Netlink { op: op(), source })?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(|source| NetError::Netlink { op: op(), source })?;
        Ok(Netlink {
            socket,
            sequence: 0,
        })
    }

    /// Send `message` with `flags` (plus REQUEST and ACK) and wait for the
    /// kernel's acknowledgement. `op` names the request in errors.
    pub fn request(&mut self, op: &str, message: RouteNetlinkMessage, flags: u16) -> Result<()> {
        self.exchange(op, message, flags | NLM_F_ACK).map(drop)
    }

    /// Send a dump request and collect every message of the reply.
    pub fn dump(
        &mut self,
        op: &str,
        message: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.exchange(op, message, NLM_F_DUMP)
    }

    /// Send a request whose reply is one message (a `GET` of one object).
    pub fn get(&mut self, op: &str, message: RouteNetlinkMessage) -> Result<RouteNetlinkMessage> {
        self.exchange(op, message, 0)?
            .into_iter()
            .next()
            .ok_or_else(|| NetError::NetlinkReply {
                op: op.to_owned(),
                reason: "no message in the reply".into(),
            })
    }

    fn exchange(
        &mut self,
        op: &str,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        let failed = |source| NetError::Netlink {
            op: op.to_owned(),
            source,
        };
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::from(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket.send(&buf, 0).map_err(failed)?;

        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let acked = flags & NLM_F_ACK != 0;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self.socket.recv_from_full().map_err(failed)?;
            let mut offset = 0;
            while offset < data.len() {
                let reply = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&data[offset..])
                    .map_err(|e| NetError::NetlinkReply {
                        op: op.to_owned(),
                        reason: e.to_string(),
                    })?;
                let len = reply.header.length as usize;
                if len == 0 {
                    return Err(NetError::NetlinkReply {
                        op: op.to_owned(),
                        reason: "a message of length 0".into(),
                    });
                }
                offset += (len + 3) & !3;
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::Error(e) => {
                        if e.code.is_some() {
                            return Err(failed(e.to_io()));
                        }
                        return Ok(replies);
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if !dump && !acked {
                            return Ok(replies);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}
