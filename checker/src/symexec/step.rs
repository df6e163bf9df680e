//! What each instruction does to a state.

use simplebpf_compiler::object_model::insn::{AluOp, JmpOp, Opcode, Source};
use simplebpf_compiler::object_model::{Helper, Insn, Target};
use z3::ast::{Ast, BV, Bool};

use super::memory::{atomic, load, map_lookup, read_ptr_bits, store};
use super::{Event, Inputs, Region, State, Unknown, Val, bv, reg, scalar, set, unknown};

pub(crate) enum Step {
    Next,
    Exit,
    Fork {
        cond: Bool,
        target: usize,
    },
    /// A map lookup whose key may be absent: `r0` is `hit` where `present` holds, else NULL.
    Lookup {
        present: Bool,
        hit: Val,
    },
}

pub(crate) fn step(
    state: &mut State,
    insn: &Insn,
    insns: &[Insn],
    inputs: &Inputs,
) -> Result<Step, Unknown> {
    match insn.opcode {
        Opcode::Alu {
            wide,
            op: AluOp::End,
            source,
        } => byte_swap(state, insn, wide, source).map(|_| next(state)),
        Opcode::Alu { wide, op, source } => alu(state, insn, wide, op, source).map(|_| next(state)),
        Opcode::Jmp { wide, op, source } => jump(state, insn, wide, op, source, insns, inputs),
        Opcode::Load { size, sign_extend } => {
            load(state, insn, size, sign_extend)?;
            Ok(next(state))
        }
        Opcode::Store { size, source } => {
            store(state, insn, size, source)?;
            Ok(next(state))
        }
        Opcode::Atomic { size } => {
            atomic(state, insn, size)?;
            Ok(next(state))
        }
        Opcode::LoadImm64 => {
            let value = match &insn.target {
                Some(Target::Map(name)) => Val::Map(name.clone()),
                Some(Target::Value { map, offset }) => Val::Ptr {
                    region: Region::Section(map.clone()),
                    off: bv(u64::from(*offset), 64),
                },
                None if insn.src == 0 => {
                    let wide = (u64::from(insn.imm_hi as u32) << 32) | u64::from(insn.imm as u32);
                    Val::Scalar(bv(wide, 64))
                }
                None => {
                    return Err(unknown(
                        state,
                        format!("lddw with src_reg {} is not modelled", insn.src),
                    ));
                }
            };
            set(state, insn.dst, value);
            Ok(next(state))
        }
        other => Err(unknown(state, format!("{other:?} is not modelled"))),
    }
}

fn next(state: &mut State) -> Step {
    state.pc += 1;
    Step::Next
}

fn alu(
    state: &mut State,
    insn: &Insn,
    wide: bool,
    op: AluOp,
    source: Source,
) -> Result<(), Unknown> {
    let bits = if wide { 64 } else { 32 };
    let src_val = if source == Source::Reg {
        Some(reg(state, insn.src)?)
    } else {
        None
    };
    // Pointer arithmetic: add/sub a number, move, or subtract two pointers of one region.
    if wide {
        let dst_val = state.regs[insn.dst as usize].clone();
        match (op, dst_val.as_ref(), src_val.as_ref()) {
            (AluOp::Mov, _, Some(ptr @ (Val::Ptr { .. } | Val::Map(_)))) => {
                set(state, insn.dst, ptr.clone());
                return Ok(());
            }
            (AluOp::Sub, Some(Val::Ptr { off: a, .. }), Some(Val::Ptr { off: b, .. })) => {
                set(state, insn.dst, Val::Scalar(a.bvsub(b)));
                return Ok(());
            }
            (AluOp::Add | AluOp::Sub, Some(Val::Ptr { region, off }), _) => {
                let delta = match &src_val {
                    Some(Val::Scalar(v)) => v.clone(),
                    None => BV::from_i64(i64::from(insn.imm), 64),
                    _ => return Err(unknown(state, "arithmetic on two pointers")),
                };
                let off = if op == AluOp::Add {
                    off.bvadd(&delta)
                } else {
                    off.bvsub(&delta)
                };
                set(
                    state,
                    insn.dst,
                    Val::Ptr {
                        region: region.clone(),
                        off,
                    },
                );
                return Ok(());
            }
            (AluOp::Add, Some(Val::Scalar(n)), Some(Val::Ptr { region, off })) => {
                set(
                    state,
                    insn.dst,
                    Val::Ptr {
                        region: region.clone(),
                        off: off.bvadd(n),
                    },
                );
                return Ok(());
            }
            (_, Some(Val::Ptr { .. } | Val::Map(_)), _) if op != AluOp::Mov => {
                return Err(unknown(state, format!("{op:?} on a pointer")));
            }
            _ => {}
        }
    }
    let src = match src_val {
        Some(Val::Scalar(v)) => v,
        Some(_) => return Err(unknown(state, "a pointer used as a number")),
        None => BV::from_i64(i64::from(insn.imm), 64),
    };
    let src = if wide { src } else { src.extract(31, 0) };
    let dst_full = if op == AluOp::Mov {
        bv(0, 64)
    } else {
        scalar(state, insn.dst)?
    };
    let dst = if wide {
        dst_full.clone()
    } else {
        dst_full.extract(31, 0)
    };
    let zero = bv(0, bits);
    let shift_mask = bv(u64::from(bits - 1), bits);
    let signed = insn.off == 1;
    let result = match op {
        AluOp::Add => dst.bvadd(&src),
        AluOp::Sub => dst.bvsub(&src),
        AluOp::Mul => dst.bvmul(&src),
        AluOp::Div | AluOp::Mod if !signed && src.simplify().as_u64().is_some_and(|c| c != 0) => {
            // Unsigned division by a constant: a fresh quotient q with q·c ≤ x < q·c + c
            // (exact, and multiplication by a constant is cheap where a divider circuit is
            // not).
            let c = src.simplify();
            // Named by where it is made, so that every path through here (and a replay of
            // one) means the same quotient.
            let visit = state.visits.get(&state.pc).copied().unwrap_or(0);
            let q = BV::new_const(format!("quotient@{}#{visit}", state.pc), bits);
            let wide = |v: &BV| v.zero_ext(bits);
            let product = wide(&q).bvmul(wide(&c));
            state.cond.push(Bool::and(&[
                product.bvule(wide(&dst)),
                wide(&dst).bvult(product.bvadd(wide(&c))),
            ]));
            if op == AluOp::Div {
                q
            } else {
                dst.bvsub(q.bvmul(&c))
            }
        }
        AluOp::Div => {
            let q = if signed {
                dst.bvsdiv(&src)
            } else {
                dst.bvudiv(&src)
            };
            src.eq(&zero).ite(&zero, &q)
        }
        AluOp::Mod => {
            let r = if signed {
                dst.bvsrem(&src)
            } else {
                dst.bvurem(&src)
            };
            // x % 0 leaves x (truncated to 32 bits for the 32-bit form).
            src.eq(&zero).ite(&dst, &r)
        }
        AluOp::Or => dst.bvor(&src),
        AluOp::And => dst.bvand(&src),
        AluOp::Xor => dst.bvxor(&src),
        AluOp::Lsh => dst.bvshl(src.bvand(&shift_mask)),
        AluOp::Rsh => dst.bvlshr(src.bvand(&shift_mask)),
        AluOp::Arsh => dst.bvashr(src.bvand(&shift_mask)),
        AluOp::Neg => dst.bvneg(),
        AluOp::Mov => match insn.off {
            0 => src,
            8 | 16 | 32 if (insn.off as u32) < bits => {
                let width = insn.off as u32;
                src.extract(width - 1, 0).sign_ext(bits - width)
            }
            other => {
                return Err(unknown(
                    state,
                    format!("mov with offset {other} is not modelled"),
                ));
            }
        },
        AluOp::End => unreachable!("byte swaps are their own step"),
    };
    let result = if wide { result } else { result.zero_ext(32) };
    set(state, insn.dst, Val::Scalar(result));
    Ok(())
}

fn byte_swap(state: &mut State, insn: &Insn, alu64: bool, source: Source) -> Result<(), Unknown> {
    let value = scalar(state, insn.dst)?;
    let width = insn.imm as u32;
    if !matches!(width, 16 | 32 | 64) {
        return Err(unknown(state, format!("byte swap of width {width}")));
    }
    let low = value.extract(width - 1, 0);
    // On a little-endian machine `to le` only truncates; `to be` and the v4 `bswap` swap.
    let swap = alu64 || source == Source::Reg;
    let out = if swap {
        let bytes: Vec<BV> = (0..width / 8)
            .map(|i| low.extract(i * 8 + 7, i * 8))
            .collect();
        bytes
            .into_iter()
            .reduce(|acc, b| acc.concat(&b))
            .expect("at least two bytes")
    } else {
        low
    };
    let out = if width < 64 {
        out.zero_ext(64 - width)
    } else {
        out
    };
    set(state, insn.dst, Val::Scalar(out));
    Ok(())
}

fn jump(
    state: &mut State,
    insn: &Insn,
    wide: bool,
    op: JmpOp,
    source: Source,
    insns: &[Insn],
    inputs: &Inputs,
) -> Result<Step, Unknown> {
    let narrow = !wide;
    // Jump offsets count 8-byte slots, and a wide `lddw` takes two: map the target slot back
    // to an instruction index.
    let slot_of = |index: usize| {
        insns[..index]
            .iter()
            .map(|i| usize::from(i.slots))
            .sum::<usize>()
    };
    let here = slot_of(state.pc);
    let target_of = |off: i64| -> usize {
        let slot = here as i64 + 1 + off;
        let mut acc = 0i64;
        for (index, i) in insns.iter().enumerate() {
            if acc == slot {
                return index;
            }
            acc += i64::from(i.slots);
        }
        if acc == slot { insns.len() } else { usize::MAX }
    };
    match op {
        JmpOp::Ja => {
            let off = if narrow {
                i64::from(insn.imm)
            } else {
                i64::from(insn.off)
            };
            state.pc = target_of(off);
            return Ok(Step::Next);
        }
        JmpOp::Exit => return Ok(Step::Exit),
        JmpOp::Call => {
            let Some(helper) = insn.helper() else {
                return Err(unknown(
                    state,
                    "calls to BPF subprograms or kfuncs are not modelled",
                ));
            };
            if helper == Helper::MAP_LOOKUP_ELEM {
                return map_lookup(state);
            }
            call(state, helper, inputs)?;
            return Ok(next(state));
        }
        _ => {}
    }
    let target = target_of(i64::from(insn.off));
    let lhs = reg(state, insn.dst)?;
    let rhs = if source == Source::Reg {
        reg(state, insn.src)?
    } else {
        Val::Scalar(BV::from_i64(i64::from(insn.imm), 64))
    };
    let (a, b) = match (lhs, rhs) {
        (Val::Scalar(a), Val::Scalar(b)) => (a, b),
        (Val::Ptr { region: ra, off: a }, Val::Ptr { region: rb, off: b })
            if matches!((&ra, &rb), (Region::Packet, Region::Packet)) =>
        {
            (a, b)
        }
        // A pointer compared with 0 is a NULL check: map-value pointers here are never NULL
        // (the NULL case is its own path, a scalar 0).
        (Val::Ptr { .. }, Val::Scalar(b)) if b.as_u64() == Some(0) => (bv(1, 64), bv(0, 64)),
        _ => {
            return Err(unknown(
                state,
                "a comparison of pointers from different regions",
            ));
        }
    };
    let (a, b) = if narrow {
        (a.extract(31, 0), b.extract(31, 0))
    } else {
        (a, b)
    };
    let cond = match op {
        JmpOp::Jeq => a.eq(&b),
        JmpOp::Jne => a.eq(&b).not(),
        JmpOp::Jgt => a.bvugt(&b),
        JmpOp::Jge => a.bvuge(&b),
        JmpOp::Jlt => a.bvult(&b),
        JmpOp::Jle => a.bvule(&b),
        JmpOp::Jsgt => a.bvsgt(&b),
        JmpOp::Jsge => a.bvsge(&b),
        JmpOp::Jslt => a.bvslt(&b),
        JmpOp::Jsle => a.bvsle(&b),
        JmpOp::Jset => {
            let width = a.get_size();
            a.bvand(&b).eq(bv(0, width)).not()
        }
        JmpOp::Ja | JmpOp::Exit | JmpOp::Call => unreachable!("handled above"),
    };
    Ok(Step::Fork { cond, target })
}

pub(crate) fn map_arg(state: &State, r: u8) -> Result<String, Unknown> {
    match reg(state, r)? {
        Val::Map(name) => Ok(name),
        _ => Err(unknown(state, format!("r{r} should hold a map"))),
    }
}

fn call(state: &mut State, helper: Helper, inputs: &Inputs) -> Result<(), Unknown> {
    let result = match helper {
        Helper::GET_PRANDOM_U32 => {
            if state.draws_used > 255 {
                return Err(unknown(state, "more than 256 random draws"));
            }
            let index = bv(state.draws_used as u64, 8);
            state.draws_used += 1;
            state.events.push(Event {
                guard: Bool::from_bool(true),
                pc: state.pc,
                helper,
            });
            let draw = inputs.draws.select(&index).as_bv().expect("a 32-bit draw");
            Val::Scalar(draw.zero_ext(32))
        }
        Helper::KTIME_GET_NS => {
            let time = if state.times.is_empty() {
                inputs.now.clone()
            } else {
                // The k-th clock read is the same input on every path that makes it.
                BV::new_const(format!("later_time@{}", state.times.len()), 64)
            };
            state.events.push(Event {
                guard: Bool::from_bool(true),
                pc: state.pc,
                helper,
            });
            state.times.push(time.clone());
            Val::Scalar(time)
        }
        Helper::SPIN_LOCK => {
            // Sequentially a lock does nothing; the race check uses the sections it marks.
            state.locks_taken += 1;
            state.lock = Some(state.locks_taken);
            Val::Scalar(bv(0, 64))
        }
        Helper::SPIN_UNLOCK => {
            state.lock = None;
            Val::Scalar(bv(0, 64))
        }
        Helper::MAP_UPDATE_ELEM => {
            let map = map_arg(state, 1)?;
            let key = read_ptr_bits(state, 2, key_bits(state, &map)?)?;
            let value = read_ptr_bits(state, 3, value_bits(state, &map)?)?;
            state.map_keys.push((map.clone(), key.clone()));
            let entry = state.maps.get_mut(&map).expect("checked by key_bits");
            // Maps are assumed not full (an assumption the verdict lists).
            entry.present = entry.present.store(&key, &Bool::from_bool(true));
            entry.values = entry.values.store(&key, &value);
            Val::Scalar(bv(0, 64))
        }
        Helper::MAP_DELETE_ELEM => {
            let map = map_arg(state, 1)?;
            let key = read_ptr_bits(state, 2, key_bits(state, &map)?)?;
            state.map_keys.push((map.clone(), key.clone()));
            let entry = state.maps.get_mut(&map).expect("checked by key_bits");
            let was = entry
                .present
                .select(&key)
                .as_bool()
                .expect("a presence bit");
            entry.present = entry.present.store(&key, &Bool::from_bool(false));
            Val::Scalar(was.ite(&bv(0, 64), &BV::from_i64(-2, 64)))
        }
        Helper::RINGBUF_OUTPUT => {
            let map = map_arg(state, 1)?;
            let size = scalar(state, 3)?
                .simplify()
                .as_u64()
                .ok_or_else(|| unknown(state, "ringbuf_output with a size not known statically"))?;
            if size == 0 || size > 64 {
                return Err(unknown(state, format!("ringbuf_output of {size} bytes")));
            }
            let bytes = read_ptr_bits(state, 2, size as u32 * 8)?;
            state.records.push((map, bytes));
            Val::Scalar(bv(0, 64))
        }
        other => return Err(unknown(state, format!("{other} is not modelled"))),
    };
    set(state, 0, result);
    for r in 1..=5 {
        state.regs[r] = None;
    }
    Ok(())
}

pub(crate) fn key_bits(state: &State, map: &str) -> Result<u32, Unknown> {
    state
        .maps
        .get(map)
        .map(|m| m.key_bits)
        .ok_or_else(|| unknown(state, format!("map `{map}` is not a hash or array map")))
}

fn value_bits(state: &State, map: &str) -> Result<u32, Unknown> {
    state
        .maps
        .get(map)
        .map(|m| m.value_bits)
        .ok_or_else(|| unknown(state, format!("map `{map}` is not a hash or array map")))
}
