//! The JSON shapes of the API, in and out (field names snake_case).

mod requests;
mod responses;

pub(crate) use requests::*;
pub(crate) use responses::*;
