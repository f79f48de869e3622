//! The network of an exercise: free ports and servers seen binding them
//! through the kernel's socket tables (`ports`), servers that are only
//! waiting (`idle`), the private namespace of `--isolate` (`netns`), and
//! the recording, fault-injecting relay of `--trace` and `wire=` (`relay`).

pub(super) mod idle;
pub mod netns;
pub mod ports;
pub mod relay;
