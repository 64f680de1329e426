//! The app's components: the shell ([`App`]: sign-in, room picker, room view) and the small
//! pieces a room view is made of. Each takes signals and renders; none talks to the SDK except
//! through [`crate::hooks`] (and the notes, through [`crate::shared_notes`]).

pub mod activity;
pub mod badge;
pub mod feed;
pub mod lock;
pub mod notes;
pub mod presence;
pub mod shell;
pub mod surface;
pub mod typing;

pub use activity::{ActivityPanel, NoticeBanner};
pub use badge::ConnectionBadge;
pub use feed::{Composer, Feed};
pub use lock::LockBar;
pub use notes::NotesEditor;
pub use presence::PresenceBar;
pub use shell::App;
pub use surface::SharedSurface;
pub use typing::TypingIndicator;
