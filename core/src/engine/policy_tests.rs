//! Session policy tests.
