//! A coroutine's memory: its shared header and result slot (`header`), the
//! cells they live in (`alloc`), its stack (`stack`), and the user values
//! the runtime holds on its behalf (`user_value`).

pub(crate) mod alloc;
pub(crate) mod header;
pub(crate) mod stack;
pub(crate) mod user_value;
