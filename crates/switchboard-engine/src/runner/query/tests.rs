use std::sync::{Arc, Mutex};

use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::style::RGBColor;
use proptest::prelude::*;
use serde_json::json;
use std::ops::Range;
use switchboard_core::graphs::Graphs;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::chart::{PALETTE, TimeAxis, clock, date, segments};
use super::*;
use switchboard_core::ids::civil_from_days;

const GRAPHS: &str = r#"
[graphs.cpu]
title = "CPU busy on {{ host }}"
description = "Share of CPU time not idle"
query = '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle", instance="{{ address }}:9100"}[5m])))'
unit = "%"
legend = "{{ instance }}"
range = "1h"
"#;

fn cpu() -> GraphSpec {
    Graphs::parse(GRAPHS).unwrap().get("cpu").cloned().unwrap()
}

/// A decoded PNG: width, height, RGB(A) pixels and bytes per pixel.
struct Image {
    width: u32,
    height: u32,
    pixels: Vec<u8>,
    channels: usize,
}

impl Image {
    fn decode(bytes: &[u8]) -> Self {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        pixels.truncate(info.buffer_size());
        Self {
            width: info.width,
            height: info.height,
            pixels,
            channels: info.color_type.samples(),
        }
    }

    fn pixel(&self, x: u32, y: u32) -> [u8; 3] {
        let i = (y as usize * self.width as usize + x as usize) * self.channels;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// Distinct colours in a rectangle.
    fn colours(&self, xs: Range<u32>, ys: Range<u32>) -> std::collections::BTreeSet<[u8; 3]> {
        let mut set = std::collections::BTreeSet::new();
        for y in ys {
            for x in xs.clone() {
                set.insert(self.pixel(x, y));
            }
        }
        set
    }

    /// Pixels close to `colour` in the whole image.
    fn count_near(&self, colour: RGBColor) -> usize {
        let mut n = 0;
        for y in 0..self.height {
            for x in 0..self.width {
                let p = self.pixel(x, y);
                let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).abs();
                if d(p[0], colour.0) + d(p[1], colour.1) + d(p[2], colour.2) < 30 {
                    n += 1;
                }
            }
        }
        n
    }
}

const T0: i64 = 1_700_000_000; // 2023-11-14 22:13:20 UTC

fn wave(phase: f64, n: usize) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let t = T0 as f64 + i as f64 * 15.0;
            (t, 50.0 + 40.0 * ((i as f64) / 20.0 + phase).sin())
        })
        .collect()
}

fn chart(series: Vec<ChartSeries>) -> ChartData {
    ChartData {
        title: "CPU busy on web-1".into(),
        unit: "%".into(),
        start: T0,
        end: T0 + 3600,
        step: Duration::from_secs(15),
        series,
    }
}

#[test]
fn step_keeps_series_under_the_point_budget() {
    let s = |secs| choose_step(Duration::from_secs(secs)).as_secs();
    assert_eq!(s(3600), 15);
    assert_eq!(s(60), 1);
    assert_eq!(s(0), 1);
    assert_eq!(s(250), 1);
    assert_eq!(s(251), 2);
    assert_eq!(s(7 * 86_400), 2420);
    for secs in [1, 59, 250, 999, 3600, 86_400, 31 * 86_400] {
        let step = s(secs);
        assert!(step >= 1);
        assert!(secs / step <= MAX_POINTS, "{secs}s / {step}s");
    }
    assert_eq!(
        choose_step(Duration::from_millis(1500)),
        Duration::from_secs(1)
    );
}

#[test]
fn reads_a_matrix_answer() {
    let body = br#"{"status":"success","data":{"resultType":"matrix","result":[
        {"metric":{"__name__":"up","instance":"a:9100","job":"node"},
         "values":[[1700000000,"1"],[1700000015.5,"NaN"],[1700000030,"+Inf"],[1700000045,"-Inf"],[1700000060,"1e3"]]},
        {"metric":{},"values":[]}
    ]},"warnings":["careful"],"infos":["PromQL info: metric might not be a counter"]}"#;
    let a = parse_range_answer(body, "up").unwrap();
    assert_eq!(a.series.len(), 2);
    let s = &a.series[0];
    assert_eq!(s.labels["instance"], "a:9100");
    assert_eq!(s.points.len(), 5);
    assert_eq!(s.points[0], (1_700_000_000.0, 1.0));
    assert_eq!(s.points[1].0, 1_700_000_015.5);
    assert!(s.points[1].1.is_nan());
    assert_eq!(s.points[2].1, f64::INFINITY);
    assert_eq!(s.points[3].1, f64::NEG_INFINITY);
    assert_eq!(s.points[4].1, 1000.0);
    assert!(a.series[1].labels.is_empty() && a.series[1].points.is_empty());
    assert_eq!(
        a.warnings,
        ["careful", "PromQL info: metric might not be a counter"]
    );
    let empty = parse_range_answer(
        br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#,
        "up",
    )
    .unwrap();
    assert_eq!(empty, RangeAnswer::default());
}

#[test]
fn an_error_answer_names_the_query_and_the_reason() {
    let body = br#"{"status":"error","errorType":"bad_data","error":"invalid parameter \"query\": 1:4: parse error: unexpected \"}\""}"#;
    let e = parse_range_answer(body, "up{}}").unwrap_err();
    assert_eq!(
        e,
        AnswerError::Refused(
            "refused the query `up{}}`: bad_data: invalid parameter \"query\": 1:4: parse error: unexpected \"}\"".into()
        )
    );
    let e = parse_range_answer(br#"{"status":"error"}"#, "q").unwrap_err();
    assert!(e.to_string().contains("error: no reason given"), "{e}");
}

#[test]
fn refuses_answers_the_api_does_not_document() {
    for (body, says) in [
        (&b"<html>502 Bad Gateway</html>"[..], "not the API's JSON"),
        (br#"{"status":"success"}"#, "without data"),
        (
            br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
            "`vector`",
        ),
        (
            br#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"x"]]}]}}"#,
            "not a number: `x`",
        ),
        (
            br#"{"status":"success","data":{"resultType":"matrix","result":{"a":1}}}"#,
            "cannot be read",
        ),
    ] {
        match parse_range_answer(body, "q") {
            Err(AnswerError::Malformed(m)) => assert!(m.contains(says), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn numbers_for_people() {
    let cases = [
        (0.0, "0"),
        (42.0, "42"),
        (42.123, "42.1"),
        (2.34567, "2.35"),
        (0.5, "0.5"),
        (0.0123, "0.012"),
        (1500.0, "1.5k"),
        (2_345_678.0, "2.35M"),
        (7e9, "7G"),
        (1.2e12, "1.2T"),
        (-250.0, "-250"),
        (1e-5, "1.00e-5"),
        (f64::NAN, "NaN"),
        (f64::INFINITY, "+Inf"),
        (-0.0001, "-1.00e-4"),
    ];
    for (v, text) in cases {
        assert_eq!(human(v), text, "{v}");
    }
}

#[test]
fn summaries_give_last_min_max_with_the_unit() {
    let s = ChartSeries {
        label: "web-1".into(),
        points: vec![(1.0, 20.0), (2.0, f64::NAN), (3.0, 97.5), (4.0, 3.0)],
    };
    assert_eq!(summary(&s, "%"), "web-1: last 3%, min 3%, max 97.5%");
    assert_eq!(
        summary(&s, "bytes"),
        "web-1: last 3 bytes, min 3 bytes, max 97.5 bytes"
    );
    assert_eq!(summary(&s, ""), "web-1: last 3, min 3, max 97.5");
    let none = ChartSeries {
        label: "x".into(),
        points: vec![(1.0, f64::NAN)],
    };
    assert_eq!(summary(&none, "%"), "x: no data");
}

#[test]
fn labels_and_titles_stay_on_one_line() {
    assert_eq!(one_line("a\nb\r\tc\u{0}d"), "a b  c d");
    assert_eq!(truncate("abcdef", 4), "abc…");
    assert_eq!(
        shorten_middle("instance=web-1.example.org:9100", 12),
        "insta…g:9100"
    );
    assert_eq!(shorten_middle("short", 12), "short");
}

#[test]
fn shared_labels_are_left_out_of_default_legends() {
    let series = |pairs: &[(&str, &str)]| Series {
        labels: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        points: vec![],
    };
    let two = [
        series(&[("instance", "a:9100"), ("job", "node")]),
        series(&[("instance", "b:9100"), ("job", "node")]),
    ];
    let labels = legend_labels(&two, true);
    assert_eq!(
        labels[0],
        BTreeMap::from([("instance".into(), "a:9100".into())])
    );
    assert_eq!(
        labels[1],
        BTreeMap::from([("instance".into(), "b:9100".into())])
    );
    // With a template, or alone, a series keeps all its labels.
    assert_eq!(legend_labels(&two, false)[0].len(), 2);
    assert_eq!(legend_labels(&two[..1], true)[0].len(), 2);
}

#[test]
fn keeps_the_series_with_the_highest_peaks() {
    let series: Vec<Series> = (0..15)
        .map(|i| Series {
            labels: BTreeMap::from([("i".to_owned(), format!("{i:02}"))]),
            points: vec![(1.0, f64::from(i)), (2.0, f64::NAN)],
        })
        .collect();
    let kept = pick_series(series);
    let names: Vec<&str> = kept.iter().map(|s| s.labels["i"].as_str()).collect();
    assert_eq!(
        names,
        ["05", "06", "07", "08", "09", "10", "11", "12", "13", "14"]
    );
}

#[test]
fn lines_break_at_gaps_and_non_finite_values() {
    let points = [
        (0.0, 1.0),
        (15.0, 2.0),
        (30.0, f64::NAN),
        (45.0, 3.0),
        (60.0, 4.0),
        (200.0, 5.0),
        (5000.0, 6.0),
    ];
    let segs = segments(&points, 22.5, 0.0, 3600.0);
    assert_eq!(
        segs,
        vec![
            vec![(0.0, 1.0), (15.0, 2.0)],
            vec![(45.0, 3.0), (60.0, 4.0)],
            vec![(200.0, 5.0)],
        ]
    );
}

#[test]
fn time_labels_are_utc_clock_and_dates() {
    assert_eq!(clock(T0), "22:13");
    assert_eq!(clock(0), "00:00");
    assert_eq!(clock(-60), "23:59");
    assert_eq!(date(T0), "11-14");
    assert_eq!(civil_from_days(0), (1970, 1, 1));
    assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    assert_eq!(civil_from_days(-1), (1969, 12, 31));
    assert_eq!(date(951_782_400), "02-29"); // 2000-02-29

    let hour = TimeAxis::new(T0 as f64, (T0 + 3600) as f64);
    let ticks = hour.key_points(8usize);
    assert!(!ticks.is_empty() && ticks.len() <= 8, "{ticks:?}");
    assert!(ticks.iter().all(|t| (*t as i64) % 600 == 0), "{ticks:?}");
    assert_eq!(hour.format_ext(&ticks[0]), "22:20");
    let week = TimeAxis::new(T0 as f64, (T0 + 7 * 86_400) as f64);
    let ticks = week.key_points(8usize);
    assert!(ticks.iter().all(|t| (*t as i64) % 86_400 == 0), "{ticks:?}");
    assert_eq!(week.format_ext(&ticks[0]), "11-15");
    let two_days = TimeAxis::new(T0 as f64, (T0 + 2 * 86_400) as f64);
    let ticks = two_days.key_points(8usize);
    assert_eq!(two_days.format_ext(&ticks[0]), "11-15 00:00");
    let minutes = TimeAxis::new(T0 as f64, (T0 + 120) as f64);
    let ticks = minutes.key_points(8usize);
    assert!(ticks.iter().all(|t| (*t as i64) % 15 == 0), "{ticks:?}");
    assert_eq!(minutes.format_ext(&ticks[0]), "22:13:30");
    assert_eq!(hour.map(&(T0 as f64), (0, 100)), 0);
    assert_eq!(hour.map(&((T0 + 1800) as f64), (0, 100)), 50);
}

#[test]
fn draws_a_png_of_the_right_size_with_distinct_colours() {
    let series: Vec<ChartSeries> = (0..3)
        .map(|i| ChartSeries {
            label: format!("10.0.0.{i}:9100"),
            points: wave(f64::from(i), 241),
        })
        .collect();
    let png = render_png(&chart(series)).unwrap();
    let img = Image::decode(&png);
    assert_eq!((img.width, img.height), (WIDTH, HEIGHT));
    // White background.
    assert_eq!(img.pixel(2, 2), [255, 255, 255]);
    // The plot has many colours (lines, anti-aliased text).
    let colours = img.colours(0..WIDTH, 0..HEIGHT);
    assert!(colours.len() > 50, "{} colours", colours.len());
    // Each series is drawn in its own colour.
    for colour in &PALETTE[..3] {
        assert!(img.count_near(*colour) > 200, "{colour:?}");
    }
    assert!(img.count_near(PALETTE[3]) < 50);
}

#[test]
fn one_series_has_no_legend_and_still_draws() {
    let png = render_png(&chart(vec![ChartSeries {
        label: "only".into(),
        points: wave(0.0, 241),
    }]))
    .unwrap();
    let img = Image::decode(&png);
    assert_eq!((img.width, img.height), (WIDTH, HEIGHT));
    assert!(img.count_near(PALETTE[0]) > 200);
    // No legend panel: the right edge of the plot is not empty white.
    assert!(img.colours(600..780, 40..340).len() > 2);
}

#[test]
fn no_data_is_a_chart_that_says_so() {
    for series in [
        vec![],
        vec![ChartSeries {
            label: "nan".into(),
            points: vec![(T0 as f64, f64::NAN)],
        }],
    ] {
        let png = render_png(&chart(series)).unwrap();
        let img = Image::decode(&png);
        assert_eq!((img.width, img.height), (WIDTH, HEIGHT));
        // The message is drawn in the middle of the plot.
        assert!(img.colours(250..550, 150..250).len() > 5);
    }
}

#[test]
fn odd_charts_still_draw() {
    let long = "x".repeat(500);
    let mut c = chart(
        (0..12)
            .map(|i| ChartSeries {
                label: format!("{long}{i} ✓ ünïcode"),
                points: vec![(T0 as f64 + 10.0, f64::from(i))],
            })
            .collect(),
    );
    c.title = long.clone();
    c.unit = String::new();
    render_png(&c).unwrap();
    // A flat line, a huge value, a negative one, a range of one second.
    for points in [
        vec![(T0 as f64, 5.0), (T0 as f64 + 60.0, 5.0)],
        vec![(T0 as f64, 1e300), (T0 as f64 + 60.0, -1e300)],
        vec![(T0 as f64, -3.0), (T0 as f64 + 60.0, f64::INFINITY)],
    ] {
        render_png(&chart(vec![ChartSeries {
            label: "s".into(),
            points,
        }]))
        .unwrap();
    }
    let mut tiny = chart(vec![]);
    tiny.end = tiny.start;
    render_png(&tiny).unwrap();
}

#[test]
fn extreme_values_and_times_draw_without_hanging() {
    let t = T0 as f64;
    for values in [
        [1e15, 1e15 + 0.125],
        [1e308, -1e308],
        [f64::MAX, f64::MIN],
        [1e-310, 2e-310],
        [5e-324, 0.0],
        [-1e-300, 1e-300],
        [123_456_789.123_456_7, 123_456_789.123_456_8],
    ] {
        let c = chart(vec![ChartSeries {
            label: "s".into(),
            points: vec![(t, values[0]), (t + 15.0, values[1])],
        }]);
        let img = Image::decode(&render_png(&c).unwrap());
        assert_eq!((img.width, img.height), (WIDTH, HEIGHT), "{values:?}");
    }
    for (start, end) in [
        (i64::MIN, i64::MAX),
        (i64::MAX - 10, i64::MAX),
        (i64::MIN, i64::MIN + 10),
        (0, 400 * 86_400 * 365),
    ] {
        let mut c = chart(vec![ChartSeries {
            label: "s".into(),
            points: vec![(start as f64, 1.0), (end as f64, 2.0)],
        }]);
        c.start = start;
        c.end = end;
        render_png(&c).unwrap();
    }
}

#[test]
fn value_ticks_are_round_and_bounded() {
    let axis = chart::ValueAxis { lo: 0.0, hi: 97.0 };
    assert_eq!(axis.key_points(6usize), [0.0, 20.0, 40.0, 60.0, 80.0]);
    let axis = chart::ValueAxis { lo: -0.3, hi: 0.25 };
    let ticks: Vec<String> = axis.key_points(6usize).iter().map(|v| human(*v)).collect();
    assert_eq!(ticks, ["-0.3", "-0.2", "-0.1", "0", "0.1", "0.2"]);
    for (lo, hi) in [
        (1e15, 1e15 + 0.125),
        (0.0, 0.0),
        (-1e300, 1e300),
        (5e-324, 1e-323),
    ] {
        let points = chart::ValueAxis { lo, hi }.key_points(6usize);
        assert!(points.len() <= 6, "{lo} {hi}: {points:?}");
        assert!(points.windows(2).all(|w| w[0] < w[1]), "{points:?}");
    }
    assert_eq!(chart::ValueAxis::format(&1500.0), "1.5k");
}

#[test]
fn urls_are_shown_without_credentials() {
    let settings = PrometheusSettings {
        url: "https://user:pw@prom.example:9443/prom/?x=1#f".into(),
        ..PrometheusSettings::default()
    };
    let e = Endpoint::new(&settings).unwrap();
    assert_eq!(e.shown, "https://prom.example:9443/prom");
    assert_eq!(e.api.path(), "/prom/api/v1/query_range");
    assert_eq!(e.api.query(), None);
    let plain = Endpoint::new(&PrometheusSettings::default()).unwrap();
    assert_eq!(plain.shown, "http://127.0.0.1:9090");
    assert_eq!(
        plain.api.as_str(),
        "http://127.0.0.1:9090/api/v1/query_range"
    );
    for bad in ["", "prom:9090", "ftp://x", "not a url"] {
        let s = PrometheusSettings {
            url: bad.into(),
            ..PrometheusSettings::default()
        };
        assert!(Endpoint::new(&s).is_none(), "{bad}");
    }
}

// ---- runs against a fake Prometheus ----

/// What the fake server does with each request.
#[derive(Clone)]
enum Reply {
    Json(u16, String),
    Hang,
}

/// A one-port HTTP server answering every request the same way, keeping
/// each request's head.
async fn fake_prometheus(reply: Reply) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let reply = reply.clone();
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                match reply {
                    Reply::Json(status, body) => {
                        let answer = format!(
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = socket.write_all(answer.as_bytes()).await;
                        let _ = socket.shutdown().await;
                    }
                    Reply::Hang => {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    (url, seen)
}

struct Ran {
    outcome: RunOutcome,
    started: bool,
    lines: Vec<(Stream, String)>,
}

async fn run_against(
    settings: &PrometheusSettings,
    context: serde_json::Value,
    cancel_after: Option<Duration>,
) -> Ran {
    let graph = cpu();
    let (tx, mut rx) = mpsc::channel(64);
    let (cancel_tx, cancel_rx) = watch::channel(false);
    let _keep = match cancel_after {
        Some(after) => {
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let _ = cancel_tx.send(true);
                // Keep the sender until the run has seen it.
                tokio::time::sleep(Duration::from_secs(3600)).await;
            });
            None
        }
        None => Some(cancel_tx),
    };
    let job = QueryRun {
        graph: &graph,
        context,
        range: Duration::from_secs(3600),
        prometheus: settings,
        artifact_name: "cpu.png".into(),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(60), run(job, tx, cancel_rx))
        .await
        .unwrap();
    let mut started = false;
    let mut lines = Vec::new();
    let mut seq = 0;
    while let Ok(event) = rx.try_recv() {
        match event {
            RunEvent::Started(_) => started = true,
            RunEvent::Output(chunk) => {
                seq += 1;
                assert_eq!(chunk.seq, seq);
                lines.push((chunk.stream, chunk.text));
            }
        }
    }
    Ran {
        outcome,
        started,
        lines,
    }
}

fn settings(url: &str) -> PrometheusSettings {
    PrometheusSettings {
        url: url.to_owned(),
        timeout: Duration::from_secs(20),
        bearer: None,
    }
}

fn matrix(n: usize) -> String {
    let result: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            let values: Vec<serde_json::Value> = (0..241)
                .map(|k| json!([T0 + k * 15, format!("{}", (i * 7 + k as usize) % 100)]))
                .collect();
            json!({"metric": {"instance": format!("10.0.0.{i}:9100")}, "values": values})
        })
        .collect();
    json!({"status": "success", "data": {"resultType": "matrix", "result": result}}).to_string()
}

#[tokio::test]
async fn a_run_draws_the_answer_and_sums_it_up() {
    let (url, seen) = fake_prometheus(Reply::Json(200, matrix(2))).await;
    let mut s = settings(&url);
    s.bearer = Some(Secret::new("very-secret-token".into()));
    let ran = run_against(
        &s,
        json!({"host": "web-1", "address": "10.0.0.5\"} or vector(1) or {a=\""}),
        None,
    )
    .await;
    let o = &ran.outcome;
    assert_eq!(o.status, ExecutionStatus::Succeeded, "{o:?}");
    assert!(ran.started);
    assert_eq!(o.error, None);
    assert_eq!(o.artifacts.len(), 1);
    let a = &o.artifacts[0];
    assert_eq!(
        (a.name.as_str(), a.media_type.as_str()),
        ("cpu.png", "image/png")
    );
    let img = Image::decode(&a.bytes);
    assert_eq!((img.width, img.height), (WIDTH, HEIGHT));
    let result = o.result.clone().unwrap();
    assert_eq!(result["graph"], "cpu");
    assert_eq!(result["range"], "1h");
    assert_eq!(result["step"], "15s");
    assert_eq!(result["series"], 2);
    assert_eq!(result["points"], 482);
    assert_eq!(result["artifact"], "cpu.png");
    let query = result["query"].as_str().unwrap();
    assert!(
        query.contains(r#"instance="10.0.0.5\"} or vector(1) or {a=\":9100"}"#),
        "{query}"
    );
    let stdout: Vec<&str> = ran
        .lines
        .iter()
        .filter(|(s, _)| *s == Stream::Stdout)
        .map(|(_, t)| t.as_str())
        .collect();
    assert_eq!(
        stdout,
        [
            "10.0.0.0:9100: last 40%, min 0%, max 99%",
            "10.0.0.1:9100: last 47%, min 0%, max 99%"
        ]
    );
    assert!(ran.lines[0].1.starts_with(&format!(
        "querying Prometheus at {url} for the last 1h (step 15s)"
    )));
    // As for every runner, output bytes count what the run produced, not
    // Switchboard's own notes.
    let total: usize = stdout.iter().map(|t| t.len() + 1).sum();
    assert_eq!(o.output_bytes, i64::try_from(total).unwrap());

    // The request: the API path, the query as a parameter, the token in its header.
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let head = &requests[0];
    assert!(head.starts_with("GET /api/v1/query_range?query="), "{head}");
    assert!(head.contains("&step=15 "), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("authorization: bearer very-secret-token"),
        "{head}"
    );
    let everything = format!("{:?} {:?}", ran.lines, o);
    assert!(!everything.contains("very-secret-token"));
}

#[tokio::test]
async fn many_series_are_capped_and_no_data_is_not_an_error() {
    let (url, _) = fake_prometheus(Reply::Json(200, matrix(13))).await;
    let ran = run_against(&settings(&url), json!({"host": "h", "address": "a"}), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
    assert_eq!(ran.outcome.result.as_ref().unwrap()["series"], 13);
    assert!(ran.lines.iter().any(|(s, t)| *s == Stream::System
        && t == "13 series; showing the 10 with the highest peaks, 3 left out"));
    assert_eq!(
        ran.lines
            .iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .count(),
        10
    );

    let (url, _) = fake_prometheus(Reply::Json(200, matrix(0))).await;
    let ran = run_against(&settings(&url), json!({"host": "h", "address": "a"}), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Succeeded);
    assert!(
        ran.lines
            .iter()
            .any(|(s, t)| *s == Stream::System && t == "no data for this range")
    );
    assert_eq!(ran.outcome.result.as_ref().unwrap()["series"], 0);
    let img = Image::decode(&ran.outcome.artifacts[0].bytes);
    assert_eq!((img.width, img.height), (WIDTH, HEIGHT));
}

#[tokio::test]
async fn a_refused_query_fails_with_prometheus_reason() {
    let body =
        r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected }"}"#;
    let (url, _) = fake_prometheus(Reply::Json(400, body.into())).await;
    let ran = run_against(&settings(&url), json!({"host": "h", "address": "a"}), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let e = ran.outcome.error.unwrap();
    assert!(
        e.starts_with(&format!("Prometheus at {url} refused the query `100 * (1")),
        "{e}"
    );
    assert!(
        e.ends_with("bad_data: 1:5: parse error: unexpected }"),
        "{e}"
    );
    assert!(ran.outcome.artifacts.is_empty());

    let (url, _) = fake_prometheus(Reply::Json(502, "bad gateway".into())).await;
    let ran = run_against(&settings(&url), json!({"host": "h", "address": "a"}), None).await;
    let e = ran.outcome.error.unwrap();
    assert!(e.contains("answered HTTP 502"), "{e}");
}

#[tokio::test]
async fn a_server_that_is_down_fails_naming_the_url() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://scraper:hunter2@127.0.0.1:{port}");
    let mut s = settings(&url);
    s.bearer = Some(Secret::new("tok-123".into()));
    let ran = run_against(&s, json!({"host": "h", "address": "a"}), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let e = ran.outcome.error.clone().unwrap();
    assert!(
        e.starts_with(&format!(
            "cannot connect to Prometheus at http://127.0.0.1:{port}: "
        )),
        "{e}"
    );
    assert!(e.to_lowercase().contains("refused"), "{e}");
    let everything = format!("{:?} {:?}", ran.lines, ran.outcome);
    assert!(!everything.contains("hunter2") && !everything.contains("tok-123"));
}

#[tokio::test]
async fn a_server_that_does_not_answer_times_out() {
    let (url, _) = fake_prometheus(Reply::Hang).await;
    let mut s = settings(&url);
    s.timeout = Duration::from_millis(500);
    let ran = run_against(&s, json!({"host": "h", "address": "a"}), None).await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Failed);
    let e = ran.outcome.error.unwrap();
    assert_eq!(
        e,
        format!("Prometheus at {url} did not answer within 500ms")
    );
}

#[tokio::test]
async fn cancel_stops_a_waiting_query() {
    let (url, seen) = fake_prometheus(Reply::Hang).await;
    let ran = run_against(
        &settings(&url),
        json!({"host": "h", "address": "a"}),
        Some(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(ran.outcome.status, ExecutionStatus::Cancelled);
    assert_eq!(ran.outcome.error.as_deref(), Some("cancelled"));
    assert!(ran.outcome.artifacts.is_empty());
    assert_eq!(
        ran.lines.last().unwrap(),
        &(Stream::System, "cancelled".to_owned())
    );
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_fail_before_starting() {
    let graph = cpu();
    let s = settings("http://127.0.0.1:9");
    let cases = [
        (
            json!({"host": "h"}),
            Duration::from_secs(60),
            "x.png",
            "undefined",
        ),
        (
            json!({"host": "h", "address": "a"}),
            Duration::ZERO,
            "x.png",
            "range",
        ),
        (
            json!({"host": "h", "address": "a"}),
            Duration::from_secs(60),
            "../x.png",
            "file name",
        ),
        (
            json!({"host": "h", "address": "a"}),
            Duration::from_secs(60),
            "",
            "file name",
        ),
    ];
    for (context, range, name, says) in cases {
        let (tx, mut rx) = mpsc::channel(8);
        let (_cancel_tx, cancel_rx) = watch::channel(false);
        let job = QueryRun {
            graph: &graph,
            context,
            range,
            prometheus: &s,
            artifact_name: name.into(),
        };
        let o = run(job, tx, cancel_rx).await;
        assert_eq!(o.status, ExecutionStatus::Failed);
        assert!(o.error.as_deref().unwrap().contains(says), "{o:?}");
        assert!(rx.try_recv().is_err(), "nothing started");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_answer_parser_never_panics_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_range_answer(&body, "q");
    }

    #[test]
    fn the_answer_parser_never_panics_on_json_like_answers(
        status in prop_oneof![Just("success".to_owned()), Just("error".to_owned()), "\\PC{0,8}"],
        kind in prop_oneof![Just("matrix".to_owned()), Just("vector".to_owned()), "\\PC{0,8}"],
        labels in proptest::collection::btree_map("\\PC{0,6}", "\\PC{0,6}", 0..4),
        values in proptest::collection::vec((any::<f64>(), prop_oneof![
            Just("NaN".to_owned()), Just("+Inf".to_owned()), Just("-Inf".to_owned()),
            any::<f64>().prop_map(|f| f.to_string()), "\\PC{0,10}"
        ]), 0..20),
        junk in "\\PC{0,20}",
    ) {
        let values: Vec<serde_json::Value> = values
            .into_iter()
            .map(|(t, v)| if t.is_finite() { json!([t, v]) } else { json!([junk.clone(), v]) })
            .collect();
        let body = json!({
            "status": status,
            "errorType": junk,
            "error": junk,
            "data": {"resultType": kind, "result": [{"metric": labels, "values": values}]},
        })
        .to_string();
        if let Ok(answer) = parse_range_answer(body.as_bytes(), "q") {
            prop_assert!(answer.series.len() <= 1);
        }
        // Truncated answers too.
        for cut in [0, body.len() / 3, body.len() / 2, body.len().saturating_sub(1)] {
            let _ = parse_range_answer(&body.as_bytes()[..cut], "q");
        }
    }

}

proptest! {
    // Drawing takes a while: fewer cases.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn any_series_draws(
        points in proptest::collection::vec((0.0f64..4000.0, prop_oneof![
            any::<f64>(), -1e6f64..1e6, Just(f64::NAN),
            (1e15f64..1.000_000_1e15), (-1e-300f64..1e-300)
        ]), 0..40),
        n in 1usize..4,
    ) {
        let series = (0..n)
            .map(|i| ChartSeries {
                label: format!("s{i}"),
                points: points.iter().map(|(t, v)| (T0 as f64 + t, *v)).collect(),
            })
            .collect();
        let png = render_png(&chart(series)).unwrap();
        prop_assert!(png.starts_with(b"\x89PNG"));
    }
}
