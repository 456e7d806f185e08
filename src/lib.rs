//! The `agora` workspace root package. It exists to own the end-to-end tests in `tests/`,
//! which run the server binary and its plugins together; the code lives in `server/`,
//! `client/` and `shared/`.
