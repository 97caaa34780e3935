//! The kit's servers start with nothing running on the machine, answer, and are gone once
//! stopped.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use flashgate_testkit::{Database, RedisServer, postgres::blocking};

#[test]
fn the_shared_redis_answers() {
    let mut c = redis::Client::open(flashgate_testkit::redis_url())
        .unwrap()
        .get_connection()
        .unwrap();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
}

#[test]
fn a_private_redis_keeps_its_data_over_a_restart_and_is_gone_after_drop() {
    let mut server = RedisServer::start();
    let mut c = server.client().get_connection().unwrap();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    server.stop();
    server.restart();
    let mut c = server.client().get_connection().unwrap();
    let v: String = redis::cmd("GET").arg("k").query(&mut c).unwrap();
    assert_eq!(v, "v");
    let addr = server.addr();
    drop(server);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

#[test]
fn a_fresh_database_is_empty_and_dropped_after_use() {
    let db = Database::create("fg_kit");
    let name = db.name.clone();
    let url = db.url.clone();
    let tables: i64 = blocking(|| {
        postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .query_one(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
                &[],
            )
            .unwrap()
            .get(0)
    });
    assert_eq!(tables, 0);
    drop(db);
    let left: i64 = blocking(|| {
        postgres::Client::connect(&flashgate_testkit::postgres_url(), postgres::NoTls)
            .unwrap()
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .unwrap()
            .get(0)
    });
    assert_eq!(left, 0);
}
