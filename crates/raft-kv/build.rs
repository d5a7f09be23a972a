//! Compiles `proto/kv.proto` with protox, a protobuf compiler written in Rust, so a build needs
//! no `protoc` on the machine; also writes the encoded descriptors the reflection service
//! serves.

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/kv.proto");
    let descriptors = protox::compile(["proto/kv.proto"], ["proto"])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("raftkv_descriptor.bin"), descriptors.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
