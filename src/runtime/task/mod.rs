//! A coroutine's making and memory: its id (`id`), its shared header and
//! result slot (`header`), the handshake of its references and result with
//! its joiner (`join`), the cells they live in (`alloc`), its stack
//! (`stack`), spawning's core (`spawn`), and the user values the runtime
//! holds on its behalf (`user_value`).

pub(crate) mod alloc;
pub(crate) mod header;
pub(crate) mod id;
pub(crate) mod join;
pub(crate) mod spawn;
pub(crate) mod stack;
pub(crate) mod user_value;
