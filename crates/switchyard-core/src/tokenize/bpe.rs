//! The encoders, each loaded the first time a request needs it and kept for the life of the
//! process.
//!
//! Loading decompresses the embedded rank table and builds its lookup structures: about 50 ms
//! and 12 MB for `cl100k_base`, 120 ms and 24 MB for `o200k_base` (measured on the project's
//! 2-core machine; the tables come from the `tiktoken` crate and are never downloaded). Under
//! mimalloc the process keeps the load's freed scratch memory for reuse, so its resident size
//! grows by about 10 and 40 MB (peak 55 MB for `o200k_base`). It runs
//! on a thread of its own, started once per encoding; a request that needs the encoder before
//! it is ready waits for it asynchronously, so no runtime thread ever blocks on a load. Built
//! without the `tokenizer` feature, no encoder exists and every count is the estimate.

use std::sync::LazyLock;

use tokio::sync::{Semaphore, SemaphorePermit};

#[cfg(feature = "tokenizer")]
pub use loaded::{get, is_loaded, Bpe};
#[cfg(not(feature = "tokenizer"))]
pub use missing::{get, is_loaded, Bpe};

static BIG_COUNTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(big_count_slots()));

/// How many prompts above [`super::INLINE_BYTES`] may be counted at once on the blocking pool:
/// half the cores, at least one, so counting never takes every core from serving.
pub fn big_count_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2))
}

/// A slot for counting one big prompt, if one is free now.
pub fn big_count_permit() -> Option<SemaphorePermit<'static>> {
    LazyLock::force(&BIG_COUNTS).try_acquire().ok()
}

#[cfg(feature = "tokenizer")]
mod loaded {
    use std::sync::{Once, OnceLock};

    use tokio::sync::Notify;

    use crate::tokenize::Encoding;

    /// A loaded encoder.
    pub struct Bpe(tiktoken::CoreBpe);

    impl Bpe {
        /// The tokens of `text`, encoded as ordinary text (a special token's spelling inside
        /// a prompt is text, as OpenAI's API treats it).
        pub fn count(&self, text: &str) -> usize {
            self.0.count(text)
        }
    }

    /// One encoding's load: started once, finished once (with `None` when it failed).
    struct Slot {
        cell: OnceLock<Option<Bpe>>,
        start: Once,
        ready: Notify,
    }

    impl Slot {
        const fn new() -> Self {
            Self {
                cell: OnceLock::new(),
                start: Once::new(),
                ready: Notify::const_new(),
            }
        }

        async fn get(&'static self, enc: Encoding) -> Option<&'static Bpe> {
            if let Some(done) = self.cell.get() {
                return done.as_ref();
            }
            let notified = self.ready.notified();
            tokio::pin!(notified);
            // Registered before the check below, so a load finishing in between still wakes us.
            notified.as_mut().enable();
            self.start.call_once(|| self.spawn_load(enc));
            if let Some(done) = self.cell.get() {
                return done.as_ref();
            }
            notified.await;
            self.cell.get().and_then(Option::as_ref)
        }

        fn spawn_load(&'static self, enc: Encoding) {
            let spawned = std::thread::Builder::new()
                .name(format!("tokenizer-{}", enc.name()))
                .spawn(move || self.load(enc));
            if let Err(e) = spawned {
                tracing::warn!(encoding = enc.name(), error = %e, "cannot start loading a tokenizer; prompts are estimated");
                self.finish(None);
            }
        }

        fn load(&self, enc: Encoding) {
            let started = tokio::time::Instant::now();
            let bpe = std::panic::catch_unwind(|| match enc {
                Encoding::O200kBase => tiktoken::encoding::o200k_base(),
                Encoding::Cl100kBase => tiktoken::encoding::cl100k_base(),
            });
            match bpe {
                Ok(bpe) => {
                    tracing::info!(
                        encoding = enc.name(),
                        ms = started.elapsed().as_millis() as u64,
                        "tokenizer loaded"
                    );
                    self.finish(Some(Bpe(bpe)));
                }
                Err(_) => {
                    tracing::warn!(
                        encoding = enc.name(),
                        "loading a tokenizer failed; prompts are estimated"
                    );
                    self.finish(None);
                }
            }
        }

        fn finish(&self, bpe: Option<Bpe>) {
            let _ = self.cell.set(bpe);
            self.ready.notify_waiters();
        }
    }

    static O200K_BASE: Slot = Slot::new();
    static CL100K_BASE: Slot = Slot::new();

    fn slot(enc: Encoding) -> &'static Slot {
        match enc {
            Encoding::O200kBase => &O200K_BASE,
            Encoding::Cl100kBase => &CL100K_BASE,
        }
    }

    /// The encoder, loading it first if no request has needed it yet; `None` if it cannot be
    /// loaded.
    pub async fn get(enc: Encoding) -> Option<&'static Bpe> {
        slot(enc).get(enc).await
    }

    /// Whether the encoder is loaded (it never is until a request needed it).
    pub fn is_loaded(enc: Encoding) -> bool {
        slot(enc).cell.get().is_some_and(Option::is_some)
    }
}

#[cfg(not(feature = "tokenizer"))]
mod missing {
    use crate::tokenize::Encoding;

    /// No encoder is built in: this type has no values.
    pub enum Bpe {}

    impl Bpe {
        /// Unreachable: there is no encoder to count with.
        pub fn count(&self, _text: &str) -> usize {
            match *self {}
        }
    }

    /// Always `None`: built without the `tokenizer` feature.
    pub async fn get(_enc: Encoding) -> Option<&'static Bpe> {
        None
    }

    /// Always `false`: built without the `tokenizer` feature.
    pub fn is_loaded(_enc: Encoding) -> bool {
        false
    }
}
