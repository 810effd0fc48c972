//! Two endpoints through a simulated lossy path.
