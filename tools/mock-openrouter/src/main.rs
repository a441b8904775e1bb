//! `mock-openrouter [--host H] [--port N]`: runs the mock until SIGTERM or
//! ctrl-c. Prints one readiness line on stdout (scripts wait for it and read
//! the port from it); everything else goes to stderr.

use std::io::Write;

const USAGE: &str = "usage: mock-openrouter [--host HOST] [--port PORT]\n\
  --host  address to bind (default 127.0.0.1)\n\
  --port  port to bind (default $MOCK_OPENROUTER_PORT, else 0 = any free port)";

fn parse_args() -> Result<(String, u16), String> {
    let mut host = "127.0.0.1".to_string();
    let mut port = match std::env::var("MOCK_OPENROUTER_PORT") {
        Ok(p) if !p.trim().is_empty() => p
            .trim()
            .parse()
            .map_err(|_| format!("bad MOCK_OPENROUTER_PORT: {p}"))?,
        _ => 0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--host" => host = value()?,
            "--port" => {
                let v = value()?;
                port = v.parse().map_err(|_| format!("bad port: {v}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok((host, port))
}

/// Resolves on SIGTERM or ctrl-c. Handlers are installed when this is
/// called (not when first awaited) so a signal sent right after the
/// readiness line still means a clean exit.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
        async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[tokio::main]
async fn main() {
    let (host, port) = parse_args().unwrap_or_else(|e| {
        eprintln!("mock-openrouter: {e}\n{USAGE}");
        std::process::exit(2);
    });
    // Built before the readiness line: a keys file that cannot be read
    // stops the mock before scripts take it for ready.
    let app = mock_openrouter::router();
    let listener = match tokio::net::TcpListener::bind((host.as_str(), port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mock-openrouter: cannot bind {host}:{port}: {e}");
            std::process::exit(1);
        }
    };
    let shutdown = shutdown_signal();
    let addr = listener.local_addr().expect("local addr");
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "mock-openrouter listening on http://{addr}");
    let _ = stdout.flush();
    // No graceful drain: open streams may be long; exiting promptly matters
    // more to the scripts that stop us.
    tokio::select! {
        r = mock_openrouter::serve(listener, app) => {
            if let Err(e) = r {
                eprintln!("mock-openrouter: {e}");
                std::process::exit(1);
            }
        }
        _ = shutdown => {}
    }
}
