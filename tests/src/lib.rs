//! The local harness: hosts every Sensorium function as the platform would. An HTTP
//! server stands in for API Gateway, an MQTT bridge for IoT Core's topic rules and
//! SQS, and timers for the schedules.

pub mod bridge;
pub mod credentials;
pub mod mqtt;
pub mod publisher;
pub mod queues;
pub mod seed;
pub mod server;
