//! What a server spent, read from outside it: the CPU time of a process from `/proc`, and the
//! time Redis reports for its commands. `compare` reads both before and after each side's load,
//! so a figure per request says where the CPU went, not just how many requests came back.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

/// `/proc/<pid>/stat` counts in clock ticks of 1/100 s (`USER_HZ`, fixed by the kernel ABI).
const TICKS_PER_S: u64 = 100;

/// The CPU time (user + system) process `pid` has used so far.
pub fn process_time(pid: u32) -> Option<Duration> {
    stat_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime of a `/proc/…/stat` line.
fn stat_time(stat: &str) -> Option<Duration> {
    // The command name (field 2) may hold spaces: count fields from after its ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15; fields[0] here is field 3.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_S))
}

/// The CPU time of each thread of process `pid`, summed by thread name (`tokio-rt-worker`,
/// `fg-persist-0`, …): which part of a server the time went to.
pub fn thread_times(pid: u32) -> BTreeMap<String, Duration> {
    let mut times = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return times;
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(name), Some(spent)) = (thread_name(&stat), stat_time(&stat)) else {
            continue;
        };
        *times.entry(name.to_owned()).or_default() += spent;
    }
    times
}

/// The command name in a `stat` line: between the first '(' and the last ')'.
fn thread_name(stat: &str) -> Option<&str> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    stat.get(open + 1..close)
}

/// The process listening on `addr`'s port (TCP, IPv4 or IPv6), if this user can see it.
pub fn listening_pid(addr: SocketAddr) -> Option<u32> {
    let inode = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .find_map(|table| listening_inode(&table, addr.port()))?;
    let wanted = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            std::fs::read_dir(entry.path().join("fd"))
                .ok()?
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == &*wanted))
                .then_some(pid)
        })
}

/// The inode of the socket listening on `port` in a `/proc/net/tcp` table.
fn listening_inode(table: &str, port: u16) -> Option<u64> {
    let port = format!(":{port:04X}");
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // local_address is field 1, st (0A = LISTEN) field 3, inode field 9.
        (fields.len() > 9 && fields[1].ends_with(&port) && fields[3] == "0A")
            .then(|| fields[9].parse().ok())
            .flatten()
    })
}

/// A Redis's process id (`INFO server`).
pub fn redis_pid(info_server: &str) -> Option<u32> {
    info_field(info_server, "process_id")?.parse().ok()
}

/// The microseconds Redis has spent running scripts (`EVAL`, `EVALSHA`, `FCALL` and their
/// read-only forms) since its stats were last reset, from `INFO commandstats`. Only scripts:
/// a command a script calls is counted under its own name as well as inside the script's time,
/// so a sum over every command would count it twice.
pub fn script_usec(info_commandstats: &str) -> u64 {
    info_commandstats
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter(|l| l.starts_with("eval") || l.starts_with("fcall"))
        .filter_map(|l| l.split(',').find_map(|kv| kv.strip_prefix("usec=")))
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_found_listening_and_its_time_read() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(listening_pid(addr), Some(std::process::id()));
        let started = process_time(std::process::id()).unwrap();
        let spin = std::time::Instant::now();
        let mut x = 0_u64;
        while spin.elapsed() < Duration::from_millis(300) {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        let spent = process_time(std::process::id()).unwrap() - started;
        assert!(spent >= Duration::from_millis(200), "{spent:?}");
        // The spinning thread is among the live ones with its time (the process total also
        // counts test threads that have exited meanwhile, so it is no bound for the live sum).
        let threads = thread_times(std::process::id());
        assert!(
            threads.values().any(|t| *t >= Duration::from_millis(200)),
            "{threads:?}"
        );
    }

    #[test]
    fn redis_info_is_read() {
        let stats = "# Commandstats\r\ncmdstat_evalsha:calls=10,usec=250,usec_per_call=25.00,\
                     rejected_calls=0,failed_calls=0\r\ncmdstat_get:calls=2,usec=3,usec_per_call=1.50\r\n\
                     cmdstat_eval:calls=1,usec=7,usec_per_call=7.00\r\n";
        assert_eq!(script_usec(stats), 257);
        assert_eq!(
            redis_pid("# Server\r\nredis_version:7.0.15\r\nprocess_id:4242\r\n"),
            Some(4242)
        );
    }
}
