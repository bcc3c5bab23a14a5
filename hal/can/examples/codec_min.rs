//! Min-of-batches timing of the MIT codec, robust on a loaded machine (unlike criterion's median), against the
//! previous implementation (per-call range scaling, kept below verbatim as the baseline):
//! `cargo run --release -p plexo-can --example codec_min`. For deterministic instruction counts:
//! `CODEC_MIN_QUICK=1 valgrind --tool=callgrind target/release/examples/codec_min` (10 000 iterations each).
//! Figures in hal/BENCHMARKS.md.

use std::hint::black_box;
use std::time::Instant;

use plexo_can::mit::{AkModel, MitCodec, MitCommand, MitErrorCode, MitRanges, MitReply};
use plexo_can::{CanFrame, CanId};

/// The codec before `MitCodec` (plexo-hal at commit b90688d): every field scaled with a division per call.
mod previous {
    use super::*;

    pub fn float_to_uint(x: f64, min: f64, max: f64, bits: u32) -> (u16, bool) {
        let clamped = x.clamp(min, max);
        let levels = f64::from((1u32 << bits) - 1);
        let v = (clamped - min) * (levels / (max - min)) + 0.5;
        ((v as u32).min((1u32 << bits) - 1) as u16, clamped != x)
    }

    pub fn uint_to_float(v: u16, min: f64, max: f64, bits: u32) -> f64 {
        let inv_levels = 1.0 / f64::from((1u32 << bits) - 1);
        f64::from(v) * ((max - min) * inv_levels) + min
    }

    #[inline(never)]
    pub fn command_frame(c: &MitCommand, id: u8, r: &MitRanges) -> Option<CanFrame> {
        if [c.position, c.velocity, c.kp, c.kd, c.torque].iter().any(|v| !v.is_finite()) {
            return None;
        }
        let (p, _) = float_to_uint(c.position, -r.position_max, r.position_max, 16);
        let (v, _) = float_to_uint(c.velocity, -r.velocity_max, r.velocity_max, 12);
        let (kp, _) = float_to_uint(c.kp, 0.0, r.kp_max, 12);
        let (kd, _) = float_to_uint(c.kd, 0.0, r.kd_max, 12);
        let (t, _) = float_to_uint(c.torque, -r.torque_max, r.torque_max, 12);
        let data = [
            (p >> 8) as u8,
            p as u8,
            (v >> 4) as u8,
            (((v & 0xF) << 4) | (kp >> 8)) as u8,
            kp as u8,
            (kd >> 4) as u8,
            (((kd & 0xF) << 4) | (t >> 8)) as u8,
            t as u8,
        ];
        CanFrame::new(CanId::Standard(u16::from(id)), &data)
    }

    #[inline(never)]
    pub fn decode_command(d: &[u8], r: &MitRanges) -> Option<MitCommand> {
        let d: &[u8; 8] = d.try_into().ok()?;
        let p = (u16::from(d[0]) << 8) | u16::from(d[1]);
        let v = (u16::from(d[2]) << 4) | u16::from(d[3] >> 4);
        let kp = (u16::from(d[3] & 0xF) << 8) | u16::from(d[4]);
        let kd = (u16::from(d[5]) << 4) | u16::from(d[6] >> 4);
        let t = (u16::from(d[6] & 0xF) << 8) | u16::from(d[7]);
        Some(MitCommand {
            position: uint_to_float(p, -r.position_max, r.position_max, 16),
            velocity: uint_to_float(v, -r.velocity_max, r.velocity_max, 12),
            kp: uint_to_float(kp, 0.0, r.kp_max, 12),
            kd: uint_to_float(kd, 0.0, r.kd_max, 12),
            torque: uint_to_float(t, -r.torque_max, r.torque_max, 12),
        })
    }

    #[inline(never)]
    pub fn reply_round_trip(reply: &MitReply, r: &MitRanges) -> MitReply {
        let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
        let (p, _) = float_to_uint(finite(reply.position), -r.position_max, r.position_max, 16);
        let (v, _) = float_to_uint(finite(reply.velocity), -r.velocity_max, r.velocity_max, 12);
        let (t, _) = float_to_uint(finite(reply.torque), -r.torque_max, r.torque_max, 12);
        let data = [
            reply.motor_id,
            (p >> 8) as u8,
            p as u8,
            (v >> 4) as u8,
            (((v & 0xF) << 4) | (t >> 8)) as u8,
            t as u8,
            finite(reply.temperature).clamp(-128.0, 127.0).round() as i8 as u8,
            reply.error.to_byte(),
        ];
        let d = black_box(data);
        let p = (u16::from(d[1]) << 8) | u16::from(d[2]);
        let v = (u16::from(d[3]) << 4) | u16::from(d[4] >> 4);
        let t = (u16::from(d[4] & 0xF) << 8) | u16::from(d[5]);
        MitReply {
            motor_id: d[0],
            position: uint_to_float(p, -r.position_max, r.position_max, 16),
            velocity: uint_to_float(v, -r.velocity_max, r.velocity_max, 12),
            torque: uint_to_float(t, -r.torque_max, r.torque_max, 12),
            temperature: f64::from(d[6] as i8),
            error: MitErrorCode::from_byte(d[7]),
        }
    }
}

/// Best time per iteration [ns] over `batches` batches of `n` iterations.
fn min_ns(batches: usize, n: usize, mut f: impl FnMut()) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / n as f64);
    }
    best
}

#[inline(never)]
fn command_now(cmd: &MitCommand, codec: &MitCodec) -> Option<MitCommand> {
    let (frame, _) = cmd.frame_with(3, codec)?;
    codec.decode_command(frame.data())
}

#[inline(never)]
fn reply_now(reply: &MitReply, codec: &MitCodec) -> Option<MitReply> {
    codec.decode_reply(&black_box(codec.encode_reply(reply)))
}

fn main() {
    let (batches, n) = if std::env::var_os("CODEC_MIN_QUICK").is_some() { (1, 10_000) } else { (200, 20_000) };
    let ranges = AkModel::Ak80_9.ranges();
    let codec = MitCodec::new(&ranges);
    let cmd = MitCommand { position: 0.7, velocity: -1.2, kp: 30.0, kd: 0.8, torque: 2.5 };
    let reply = MitReply {
        motor_id: 3,
        position: 0.7,
        velocity: -1.2,
        torque: 2.5,
        temperature: 35.0,
        error: MitErrorCode::None,
    };
    let command = min_ns(batches, n, || {
        black_box(command_now(black_box(&cmd), black_box(&codec)));
    });
    let reply_ns = min_ns(batches, n, || {
        black_box(reply_now(black_box(&reply), black_box(&codec)));
    });
    let old_command = min_ns(batches, n, || {
        let frame = previous::command_frame(black_box(&cmd), 3, black_box(&ranges)).unwrap();
        black_box(previous::decode_command(frame.data(), black_box(&ranges)));
    });
    let old_reply = min_ns(batches, n, || {
        black_box(previous::reply_round_trip(black_box(&reply), black_box(&ranges)));
    });
    println!("MIT command frame encode + decode: {command:.1} ns (previous implementation {old_command:.1} ns)");
    println!("MIT reply encode + decode:         {reply_ns:.1} ns (previous implementation {old_reply:.1} ns)");
}
