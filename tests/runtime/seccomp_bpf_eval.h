// Test helper: runs compiled seccomp programs (classic BPF over struct seccomp_data) the way
// the kernel does, to compare what two programs answer without loading either.
#pragma once

#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace cairn::runtime {

// The kernel's seccomp interpreter, for the instructions a seccomp program may use.
inline std::uint32_t runFilter(const std::string& bpf, const seccomp_data& data) {
  std::vector<sock_filter> prog(bpf.size() / sizeof(sock_filter));
  std::memcpy(prog.data(), bpf.data(), prog.size() * sizeof(sock_filter));
  std::uint32_t a = 0;
  std::uint32_t x = 0;
  std::uint32_t mem[BPF_MEMWORDS] = {};
  auto bad = [](std::size_t pc, const char* what) {
    ADD_FAILURE() << what << " at instruction " << pc;
    return 0xdeadbeefu;  // no real verdict: every comparison with it fails
  };
  for (std::size_t pc = 0; pc < prog.size(); ++pc) {
    const sock_filter& f = prog[pc];
    std::uint32_t operand = BPF_SRC(f.code) == BPF_X ? x : f.k;
    switch (BPF_CLASS(f.code)) {
      case BPF_LD:
        if (BPF_MODE(f.code) == BPF_ABS && BPF_SIZE(f.code) == BPF_W && f.k % 4 == 0 &&
            f.k + 4 <= sizeof data)
          std::memcpy(&a, reinterpret_cast<const char*>(&data) + f.k, 4);
        else if (BPF_MODE(f.code) == BPF_IMM)
          a = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM && f.k < BPF_MEMWORDS)
          a = mem[f.k];
        else if (BPF_MODE(f.code) == BPF_LEN)
          a = sizeof data;
        else
          return bad(pc, "bad load");
        break;
      case BPF_LDX:
        if (BPF_MODE(f.code) == BPF_IMM)
          x = f.k;
        else if (BPF_MODE(f.code) == BPF_MEM && f.k < BPF_MEMWORDS)
          x = mem[f.k];
        else if (BPF_MODE(f.code) == BPF_LEN)
          x = sizeof data;
        else
          return bad(pc, "bad ldx");
        break;
      case BPF_ST:
      case BPF_STX:
        if (f.k >= BPF_MEMWORDS) return bad(pc, "bad store");
        mem[f.k] = BPF_CLASS(f.code) == BPF_ST ? a : x;
        break;
      case BPF_ALU:
        switch (BPF_OP(f.code)) {
          case BPF_ADD:
            a += operand;
            break;
          case BPF_SUB:
            a -= operand;
            break;
          case BPF_MUL:
            a *= operand;
            break;
          case BPF_DIV:
            a = operand == 0 ? 0 : a / operand;
            break;
          case BPF_MOD:
            a = operand == 0 ? 0 : a % operand;
            break;
          case BPF_OR:
            a |= operand;
            break;
          case BPF_AND:
            a &= operand;
            break;
          case BPF_XOR:
            a ^= operand;
            break;
          case BPF_LSH:
            a = operand >= 32 ? 0 : a << operand;
            break;
          case BPF_RSH:
            a = operand >= 32 ? 0 : a >> operand;
            break;
          case BPF_NEG:
            a = 0 - a;
            break;
          default:
            return bad(pc, "bad alu");
        }
        break;
      case BPF_JMP: {
        if (BPF_OP(f.code) == BPF_JA) {
          pc += f.k;
          break;
        }
        bool taken = false;
        switch (BPF_OP(f.code)) {
          case BPF_JEQ:
            taken = a == operand;
            break;
          case BPF_JGT:
            taken = a > operand;
            break;
          case BPF_JGE:
            taken = a >= operand;
            break;
          case BPF_JSET:
            taken = (a & operand) != 0;
            break;
          default:
            return bad(pc, "bad jump");
        }
        pc += taken ? f.jt : f.jf;
        break;
      }
      case BPF_RET:
        return BPF_RVAL(f.code) == BPF_A ? a : f.k;
      case BPF_MISC:
        if (BPF_MISCOP(f.code) == BPF_TAX)
          x = a;
        else
          a = x;
        break;
      default:
        return bad(pc, "bad instruction");
    }
  }
  ADD_FAILURE() << "the program ran off its end";
  return 0xdeadbeef;
}

inline std::uint32_t call(const std::string& bpf, std::uint32_t arch, int nr,
                          std::uint64_t arg0 = 0, std::uint64_t arg5 = 0) {
  seccomp_data d{};
  d.nr = nr;
  d.arch = arch;
  d.args[0] = arg0;
  d.args[5] = arg5;
  return runFilter(bpf, d);
}

// The calls on which two programs answer differently (the first few in `report`), over every
// architecture a profile may name (and one it cannot), every syscall number up to past the last
// one, x32's numbers, and the argument values the default profile's rules look at.
inline std::size_t countDifferences(const std::string& expected, const std::string& actual,
                                    std::vector<std::string>* report = nullptr) {
  const std::uint64_t kArgs[] = {0,
                                 0x11,
                                 0x20000,
                                 0x2000000,
                                 0x4000000,
                                 0x8000000,
                                 0x10000000,
                                 0x20000000,
                                 0x40000000,
                                 0x7E020011,
                                 1,
                                 2,
                                 40,
                                 8,
                                 0x20008,
                                 0xffffffff,
                                 0x100000008ULL,
                                 0xffffffff00000000ULL};
  const std::uint32_t kArches[] = {AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64,
                                   AUDIT_ARCH_ARM, 0x12345678};
  std::size_t differences = 0;
  auto compare = [&](std::uint32_t arch, int nr, std::uint64_t arg0, std::uint64_t arg5) {
    std::uint32_t want = call(expected, arch, nr, arg0, arg5);
    std::uint32_t got = call(actual, arch, nr, arg0, arg5);
    if (want == got) return;
    if (report != nullptr && ++differences <= 10) {
      std::ostringstream line;
      line << std::hex << "arch " << arch << " nr " << nr << " arg0 " << arg0 << " arg5 " << arg5
           << ": " << want << " vs " << got;
      report->push_back(line.str());
    } else if (report == nullptr) {
      ++differences;
    }
  };
  for (std::uint32_t arch : kArches) {
    std::vector<int> nrs;
    for (int nr = 0; nr < 520; ++nr)
      nrs.push_back(nr);
    if (arch == AUDIT_ARCH_X86_64)
      for (int nr = 0; nr < 560; ++nr)
        nrs.push_back(0x40000000 | nr);  // x32
    nrs.push_back(-1);
    nrs.push_back(0x7fffffff);
    for (int nr : nrs) {
      for (std::uint64_t arg : kArgs)
        compare(arch, nr, arg, 0);
      compare(arch, nr, 0, 7);
    }
  }
  return differences;
}

}  // namespace cairn::runtime
