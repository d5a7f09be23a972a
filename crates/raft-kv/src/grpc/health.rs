//! The standard gRPC services beside the API: `grpc.health.v1.Health`, kept in step with the
//! node's [`Health`](crate::server::Health), and server reflection (v1), so `grpcurl` and
//! other tools discover `raftkv.v1.KeyValue` without the `.proto` file. Neither needs a token:
//! a probe has none, and the API's shape is no secret.

use std::sync::Arc;
use std::time::Duration;

use tonic_health::ServingStatus;
use tonic_health::pb::health_server::Health as HealthApi;
use tonic_health::pb::health_server::HealthServer;
use tonic_reflection::server::v1::ServerReflection;
use tonic_reflection::server::v1::ServerReflectionServer;

use crate::server::Health;
use crate::server::NodeState;

/// The handle that sets what the health service answers.
pub type HealthReporter = tonic_health::server::HealthReporter;

/// The encoded descriptors of `proto/kv.proto`, written by the build script.
const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/raftkv_descriptor.bin"));

/// The API's service name, as health checks name it.
pub const SERVICE_NAME: &str = "raftkv.v1.KeyValue";

/// How often the health service's answer is brought up to date.
const HEALTH_EVERY: Duration = Duration::from_millis(250);

/// The health service, answering `NOT_SERVING` until [`report_health`] says otherwise.
pub fn health_service() -> (HealthReporter, HealthServer<impl HealthApi>) {
    tonic_health::server::health_reporter()
}

/// The reflection service of the API and the health service (reflection describes itself).
pub fn reflection_service()
-> Result<ServerReflectionServer<impl ServerReflection>, tonic_reflection::server::Error> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
}

/// Keep the health service's answer for the server as a whole (`""`) and for
/// [`SERVICE_NAME`] in step with the node: `SERVING` while raft runs with a known leader,
/// `NOT_SERVING` otherwise (see [`Health`]). Runs until the task is dropped.
pub async fn report_health(state: Arc<NodeState>, reporter: HealthReporter) {
    let mut last = None;
    loop {
        let status = match Health::of(&state) {
            Health::Serving => ServingStatus::Serving,
            Health::NoLeader(_) | Health::Fatal(_) => ServingStatus::NotServing,
        };
        if last != Some(status) {
            reporter.set_service_status("", status).await;
            reporter.set_service_status(SERVICE_NAME, status).await;
            last = Some(status);
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}
