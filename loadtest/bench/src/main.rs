//! Ceilings for the benchmark report (`loadtest/run.sh`): what the raw
//! building blocks do on this machine, measured the same way FlashDeal uses
//! them, so the report can state FlashDeal's numbers as ratios of them.
//!
//! Each subcommand prints one JSON line:
//! `{"name", "ops", "secs", "ops_per_sec", …}`.
//!
//! # Layout
//! - `redis`: `reserve.lua` via EVALSHA from N concurrent tasks (the gateway's ceiling).
//! - `postgres`: the order-writer's `UNNEST` insert, batch after batch (its ceiling).
//! - `broker`: produce of the same Avro `OrderPlaced` payload, idempotent, acks=all.
//! - `writer`: a backlog of intents drained by the real order-writer (rows/s).

use anyhow::Context;
use clap::{Parser, Subcommand};
use flashdeal::{cli::WriterArgs, config::Config, database, roles};
use flashdeal_gateway::orders::reserve::{Reservation, ReserveRequest, reserve};
use flashdeal_producers::publisher::Outgoing;
use flashdeal_schemas::{
    DealId, OrderId, OrderPlaced, Quantity, UserId, codec::AvroEvent, events::now_millis,
    redis_keys::DealKeys, topics,
};
use rdkafka::producer::FutureRecord;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[derive(Parser)]
#[command(about = "FlashDeal benchmark ceilings")]
struct Cli {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/flashdeal_bench"
    )]
    database_url: String,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long, env = "KAFKA_BROKERS", default_value = "127.0.0.1:19092")]
    kafka_brokers: String,
    #[arg(long, env = "FLASHDEAL_PARTITIONS", default_value_t = 12)]
    partitions: i32,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// EVALSHA of reserve.lua from `concurrency` tasks for `secs` seconds.
    Redis {
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        #[arg(long, default_value_t = 5)]
        secs: u64,
    },
    /// `rows` order rows inserted with the writer's UNNEST statement, `batch` per transaction.
    Postgres {
        #[arg(long, default_value_t = 100_000)]
        rows: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
    /// `messages` OrderPlaced payloads produced and acknowledged.
    Broker {
        #[arg(long, default_value_t = 100_000)]
        messages: usize,
        /// One message at a time, each awaited: the ack latency a single
        /// `POST /orders` waits for, instead of the pipelined throughput.
        #[arg(long)]
        sequential: bool,
    },
    /// Produces `intents` intents, then times the real order-writer draining
    /// them into PostgreSQL. Stop any other order-writer first.
    Writer {
        #[arg(long, default_value_t = 100_000)]
        intents: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

fn report(name: &str, ops: usize, elapsed: Duration, extra: serde_json::Value) {
    let secs = elapsed.as_secs_f64();
    let mut v = json!({ "name": name, "ops": ops, "secs": secs, "ops_per_sec": ops as f64 / secs });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    println!("{v}");
}

fn intent(deal: DealId) -> OrderPlaced {
    let now = now_millis();
    OrderPlaced {
        event_id: Uuid::now_v7(),
        order_id: OrderId::new_v7(),
        user_id: UserId::new_v7(),
        deal_id: deal,
        quantity: 1,
        unit_price_cents: 1999,
        idempotency_key: None,
        reserved_at: now,
        expires_at: now + 600_000,
    }
}

async fn redis_ceiling(cli: &Cli, concurrency: usize, secs: u64) -> anyhow::Result<()> {
    let conn = roles::redis(&cli.redis_url).await?;
    let deal = DealId::new_v7();
    let keys = DealKeys::new(deal);
    let now = now_millis();
    let mut c = conn.clone();
    redis::pipe()
        .hset_multiple(
            &keys.meta,
            &[
                ("status", "active".to_owned()),
                ("starts_at", (now - 1000).to_string()),
                ("ends_at", (now + 3_600_000).to_string()),
                ("price_cents", "1999".to_owned()),
                ("per_user_limit", "1000".to_owned()),
            ],
        )
        .set(&keys.stock, 1_000_000_000_i64)
        .query_async::<()>(&mut c)
        .await?;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let mut conn = conn.clone();
            tokio::spawn(async move {
                let mut n = 0usize;
                let user = UserId::new_v7();
                let quantity = Quantity::try_from(1)?;
                while Instant::now() < deadline {
                    let now = now_millis();
                    let req = ReserveRequest {
                        deal,
                        user,
                        quantity,
                        order: OrderId::new_v7(),
                        now_ms: now,
                        expires_at_ms: now + 600_000,
                        idempotency_key: None,
                        idempotency_ttl_secs: 60,
                    };
                    match reserve(&mut conn, &req).await? {
                        Reservation::Reserved { .. } | Reservation::LimitReached { .. } => n += 1,
                        other => anyhow::bail!("unexpected reservation outcome {other:?}"),
                    }
                }
                Ok::<_, anyhow::Error>(n)
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let elapsed = started.elapsed();
    let _: () = redis::cmd("DEL")
        .arg(&keys.meta)
        .arg(&keys.stock)
        .arg(&keys.users)
        .arg(&keys.pending)
        .arg(&keys.reservations)
        .query_async(&mut c)
        .await?;
    report(
        "redis_evalsha_reserve",
        total,
        elapsed,
        json!({ "concurrency": concurrency }),
    );
    Ok(())
}

async fn postgres_ceiling(cli: &Cli, rows: usize, batch: usize) -> anyhow::Result<()> {
    let pool = database::migrate(&cli.database_url).await?;
    let sql = include_str!("../../../sql/queries/insert_orders.sql");
    let deal = DealId::new_v7();
    let started = Instant::now();
    let mut done = 0;
    while done < rows {
        let n = batch.min(rows - done);
        let intents: Vec<OrderPlaced> = (0..n).map(|_| intent(deal)).collect();
        let col = |f: fn(&OrderPlaced) -> Uuid| intents.iter().map(f).collect::<Vec<_>>();
        let reserved: Vec<chrono::DateTime<chrono::Utc>> = intents
            .iter()
            .map(|p| chrono::DateTime::from_timestamp_millis(p.reserved_at).unwrap_or_default())
            .collect();
        let mut tx = pool.begin().await?;
        sqlx::query(sql)
            .bind(col(|p| p.order_id.0))
            .bind(col(|p| p.user_id.0))
            .bind(col(|p| p.deal_id.0))
            .bind(intents.iter().map(|p| p.quantity).collect::<Vec<_>>())
            .bind(
                intents
                    .iter()
                    .map(|p| p.unit_price_cents)
                    .collect::<Vec<_>>(),
            )
            .bind(vec!["confirmed"; n])
            .bind(
                intents
                    .iter()
                    .map(|p| p.idempotency_key.clone())
                    .collect::<Vec<_>>(),
            )
            .bind(col(|p| p.event_id))
            .bind(reserved)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        done += n;
    }
    let elapsed = started.elapsed();
    sqlx::query("DELETE FROM orders.orders WHERE deal_id = $1")
        .bind(deal.0)
        .execute(&pool)
        .await?;
    report(
        "postgres_unnest_insert",
        rows,
        elapsed,
        json!({ "batch": batch }),
    );
    Ok(())
}

async fn broker_ceiling(cli: &Cli, messages: usize) -> anyhow::Result<()> {
    let config = config(cli);
    let kafka = config.kafka();
    let topic = "bench.produce";
    flashdeal_producers::admin::ensure_topics(&kafka, &[topic], cli.partitions).await?;
    let publisher = roles::publisher(&kafka, "flashdeal-bench")?;
    let payloads: Vec<(OrderId, Vec<u8>)> = (0..messages)
        .map(|_| {
            let p = intent(DealId::new_v7());
            Ok((p.order_id, p.encode()?))
        })
        .collect::<anyhow::Result<_>>()?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(messages);
    for (id, payload) in &payloads {
        let key = id.0.into_bytes();
        let mut record = FutureRecord::to(topic).key(&key[..]).payload(&payload[..]);
        loop {
            match publisher.producer().send_result(record) {
                Ok(f) => {
                    pending.push(f);
                    break;
                }
                Err((_, r)) => {
                    // Queue full: let deliveries drain.
                    record = r;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    }
    for f in pending {
        f.await
            .context("delivery cancelled")?
            .map_err(|(e, _)| anyhow::anyhow!("produce failed: {e}"))?;
    }
    report(
        "broker_produce",
        messages,
        started.elapsed(),
        json!({ "payload_bytes": payloads.first().map_or(0, |p| p.1.len()) }),
    );
    Ok(())
}

async fn broker_latency(cli: &Cli, messages: usize) -> anyhow::Result<()> {
    let kafka = config(cli).kafka();
    let topic = "bench.produce";
    flashdeal_producers::admin::ensure_topics(&kafka, &[topic], cli.partitions).await?;
    let publisher = roles::publisher(&kafka, "flashdeal-bench")?;
    let mut latencies = Vec::with_capacity(messages);
    let started = Instant::now();
    for _ in 0..messages {
        let p = intent(DealId::new_v7());
        let key = p.order_id.0.into_bytes();
        let t = Instant::now();
        publisher
            .publish(Outgoing {
                topic,
                key: &key,
                event_id: p.event_id,
                event: &p,
            })
            .await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let elapsed = started.elapsed();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    report(
        "broker_ack_latency",
        messages,
        elapsed,
        json!({ "p50_ms": at(0.5), "p99_ms": at(0.99) }),
    );
    Ok(())
}

async fn writer_drain(cli: &Cli, intents: usize, batch: usize) -> anyhow::Result<()> {
    let config = config(cli);
    let pool = database::migrate(&config.database_url).await?;
    roles::topics(&config.kafka(), config.partitions).await?;
    let publisher = roles::publisher(&config.kafka(), "flashdeal-bench")?;
    let deal = DealId::new_v7();
    let events: Vec<OrderPlaced> = (0..intents).map(|_| intent(deal)).collect();
    for chunk in events.chunks(5_000) {
        publisher
            .publish_by_order(topics::ORDERS_INTENTS, chunk, |e| (e.order_id, e.event_id))
            .await?;
    }
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let writer = {
        let (c, s) = (config.clone(), shutdown.clone());
        let args = WriterArgs {
            batch_size: batch,
            batch_wait_ms: 5,
        };
        tokio::spawn(async move { roles::run_order_writer(&c, &args, s).await })
    };
    let mut first_row = None;
    loop {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM orders.orders WHERE deal_id = $1")
            .bind(deal.0)
            .fetch_one(&pool)
            .await?;
        let n = n as usize;
        if n > 0 && first_row.is_none() {
            first_row = Some(started.elapsed());
        }
        if n >= intents {
            break;
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "writer did not drain in 10 minutes ({n} rows)"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    writer.await??;
    // Rows/s from the first row on: group join and the first fetch are a
    // one-off cost, reported separately.
    let warmup = first_row.unwrap_or_default();
    report(
        "order_writer_drain",
        intents,
        elapsed.saturating_sub(warmup),
        json!({ "batch": batch, "startup_secs": warmup.as_secs_f64() }),
    );
    Ok(())
}

fn config(cli: &Cli) -> Config {
    Config::with_services(
        cli.database_url.clone(),
        cli.redis_url.clone(),
        cli.kafka_brokers.clone(),
        std::env::temp_dir(),
        cli.partitions,
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    flashdeal::telemetry::init_with_default("warn");
    let cli = Cli::parse();
    match cli.command {
        Command::Redis { concurrency, secs } => redis_ceiling(&cli, concurrency, secs).await,
        Command::Postgres { rows, batch } => postgres_ceiling(&cli, rows, batch).await,
        Command::Broker {
            messages,
            sequential: false,
        } => broker_ceiling(&cli, messages).await,
        Command::Broker {
            messages,
            sequential: true,
        } => broker_latency(&cli, messages).await,
        Command::Writer { intents, batch } => writer_drain(&cli, intents, batch).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    /// The intents the ceilings write are ones the real order-writer accepts.
    #[test]
    fn bench_intents_round_trip_through_the_codec() {
        let p = intent(DealId::new_v7());
        let decoded = flashdeal_schemas::IntentEvent::decode(&p.encode().unwrap()).unwrap();
        assert_eq!(decoded, flashdeal_schemas::IntentEvent::Placed(p));
    }
}
