//! Relay benchmark: messages per second from one publisher process through a
//! broker to the ingest subscriber, QoS 0, 200-byte payloads, for the
//! embedded broker and for Mosquitto side by side.
//!
//! ```sh
//! cargo run --release -p cityos-mqtt --example relay -- [MESSAGES]
//! ```
//!
//! The publisher is this same program, re-run as `relay publish …`.

use cityos_mqtt::{PublisherArgs, RelayBroker, bench_relay, mosquitto::Mosquitto};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("publish") {
        // The load process: one thread, like a single device gateway.
        let publisher = PublisherArgs::from_args(&args[1..])?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        return Ok(runtime.block_on(publisher.run())?);
    }
    let messages: u64 = args
        .first()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let runtime = tokio::runtime::Runtime::new()?;
    let exe = std::env::current_exe()?;
    let mut brokers = vec![RelayBroker::Embedded];
    if Mosquitto::installed() {
        brokers.push(RelayBroker::Mosquitto);
    } else {
        eprintln!("mosquitto is not installed; measuring the embedded broker only");
    }
    println!(
        "{:<10} {:>10} {:>10} {:>8} {:>12}",
        "broker", "sent", "received", "seconds", "msg/s"
    );
    for broker in brokers {
        let report = runtime.block_on(bench_relay(broker, messages, 200, |publisher| {
            let mut command = tokio::process::Command::new(&exe);
            command.arg("publish").args(publisher.to_args());
            command
        }))?;
        println!(
            "{:<10} {:>10} {:>10} {:>8.2} {:>12.0}{}",
            format!("{broker:?}"),
            report.sent,
            report.received,
            report.seconds,
            report.per_second(),
            if report.broker_dropped > 0 {
                format!("  (broker dropped {})", report.broker_dropped)
            } else {
                String::new()
            },
        );
    }
    Ok(())
}
