//! The harness's tests, end to end: the REST API served on port 0 against a fresh
//! database per test, a real Mosquitto, moto's SQS, and the harness binary itself.
//! One binary (`./scripts/test --test end_to_end [filter]`); a file per route module
//! (`functions/src/routes/`) and per topic (`functions/src/topics/`), then what cuts
//! across them. What the files share is in `helpers`.

mod helpers;

mod routes {
    mod auth_matrix;
    mod configurations;
    mod credentials;
    mod export;
    mod logs;
    mod measurement_ranges;
    mod measurements;
    mod networks;
    mod sensors;
    mod status;
    mod users;
}

mod topics {
    mod configurations;
    mod heartbeats;
    mod log_messages;
    mod measurements;
}

mod bridge;
mod crash;
mod round_trip;
mod seed;
mod sqs_queues;
