//! One control plane shared by all tests of a test binary.

use std::sync::OnceLock;

use crate::{ControlPlane, Environment};

/// A control plane started on first use and shared for the rest of the process, so that the
/// tests of one binary pay for one start-up. Isolate tests by namespace.
///
/// It lives in a `static` and is never dropped: its watchdog stops it when the process exits.
///
/// ```no_run
/// static CONTROL_PLANE: testenv::SharedControlPlane =
///     testenv::SharedControlPlane::new(|| testenv::Environment::new().controller_manager(true));
///
/// #[tokio::test]
/// async fn lists_namespaces() {
///     let client = CONTROL_PLANE.get().client().await.unwrap();
///     // ...
/// }
/// ```
#[derive(Debug)]
pub struct SharedControlPlane {
    environment: fn() -> Environment,
    control_plane: OnceLock<Result<ControlPlane, String>>,
}

impl SharedControlPlane {
    /// A shared control plane that will be started from `environment`.
    #[must_use]
    pub const fn new(environment: fn() -> Environment) -> Self {
        Self {
            environment,
            control_plane: OnceLock::new(),
        }
    }

    /// The control plane, started by the first caller while the others wait.
    ///
    /// It is started on a thread with a runtime of its own, so it can be called from any
    /// test, async or not, and outlives the runtime of the test that started it.
    ///
    /// # Panics
    /// If the control plane cannot be started; every caller panics with the same message.
    pub fn get(&'static self) -> &'static ControlPlane {
        let result = self.control_plane.get_or_init(|| {
            let environment = (self.environment)();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|error| format!("cannot create a runtime: {error}"))?;
                runtime
                    .block_on(environment.start())
                    // `{:#}` writes the error and its causes on one line.
                    .map_err(|error| format!("{:#}", anyhow::Error::new(error)))
            })
            .join()
            .unwrap_or_else(|_| Err("starting the control plane panicked".to_owned()))
        });
        match result {
            Ok(control_plane) => control_plane,
            Err(error) => panic!("the shared control plane could not be started: {error}"),
        }
    }
}
