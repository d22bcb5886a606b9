//! Who may hold a connection slot of a listener (RTMP, HTTP): at most `max_connections` in all, and
//! at most `max_connections_per_address` from one client address, so one host that opens sockets and
//! trickles bytes cannot hold every slot while a streamer or viewer elsewhere is refused. A [`Slot`]
//! gives its place back when dropped, however the connection ended.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::shutdown::Shutdown;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("too many connections")]
    Full,
    #[error("too many connections from this address")]
    AddressFull,
}

pub struct Admission {
    total: Arc<Semaphore>,
    per_address_limit: usize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place.
pub struct Slot {
    admission: Arc<Admission>,
    address: IpAddr,
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(total: usize, per_address: usize) -> Arc<Admission> {
        Arc::new(Admission {
            total: Arc::new(Semaphore::new(total)),
            per_address_limit: per_address.max(1),
            per_address: Mutex::new(HashMap::new()),
        })
    }

    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<Slot, Refusal> {
        let Ok(mut counts) = self.per_address.lock() else { return Err(Refusal::Full) };
        let count = counts.entry(address).or_insert(0);
        if *count >= self.per_address_limit {
            return Err(Refusal::AddressFull);
        }
        let permit = self.total.clone().try_acquire_owned().map_err(|_| Refusal::Full)?;
        *count += 1;
        Ok(Slot { admission: self.clone(), address, _permit: permit })
    }
}

/// The next connection `listener` accepts, or `None` once `shutdown` fires. A failed accept (out
/// of file descriptors and the like) is logged and retried after a pause instead of spinning.
pub async fn next_connection(listener: &TcpListener, shutdown: &Shutdown, scheme: &'static str) -> Option<(TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.signalled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(connection) => return Some(connection),
                Err(e) => {
                    tracing::warn!(error = %e, scheme, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.admission.per_address.lock() {
            if let Some(count) = counts.get_mut(&self.address) {
                *count -= 1;
                if *count == 0 {
                    counts.remove(&self.address);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_address_cannot_take_every_slot_and_slots_come_back() {
        let admission = Admission::new(3, 2);
        let attacker: IpAddr = [10, 0, 0, 9].into();
        let streamer: IpAddr = [10, 0, 0, 1].into();
        let a1 = admission.admit(attacker).expect("first");
        let a2 = admission.admit(attacker).expect("second");
        assert_eq!(admission.admit(attacker).err(), Some(Refusal::AddressFull));
        let s1 = admission.admit(streamer).expect("another address still gets in");
        assert_eq!(admission.admit(streamer).err(), Some(Refusal::Full), "the total cap holds");
        drop(a1);
        drop(s1);
        let s2 = admission.admit(streamer).expect("room again");
        let a3 = admission.admit(attacker).expect("room again");
        assert_eq!(admission.per_address.lock().map(|c| c.len()).unwrap_or(0), 2);
        drop((s2, a3));
        drop(a2);
        assert_eq!(admission.per_address.lock().map(|c| c.len()).unwrap_or(1), 0, "no address is remembered once its connections end");
    }
}
