//! The runtime's time: instants as nanoseconds (`clock`), each worker's
//! timer heap (`timer`), and bubbles on a virtual clock (`bubble`).

pub(crate) mod bubble;
pub(crate) mod clock;
pub(crate) mod timer;
