//! Compiles `proto/kv.proto` with protox, a protobuf compiler written in Rust, so a build needs
//! no `protoc` on the machine.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/kv.proto");
    let descriptors = protox::compile(["proto/kv.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
