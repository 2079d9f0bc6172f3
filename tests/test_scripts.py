from smoothie_cli.unicode_blocks import CJK, PRESETS, UnicodeBlock
from smoothie_cli.vocab.scripts import TargetScript, blocks_for, code_point_mask


def test_cjk_predicate_excludes_ascii_space_and_digits():
    script = TargetScript(CJK)
    assert script.is_target_char("中")
    assert script.is_target_char("。")  # CJK Symbols and Punctuation
    assert not script.is_target_char("\u3000")  # ideographic space: in range, but a space
    assert not script.is_target_char("a")
    assert not script.is_target_char("한")
    assert script.has_target_char("abc中")
    assert not script.has_target_char("abc 123")


def test_digits_in_range_do_not_count():
    script = TargetScript([UnicodeBlock("fullwidth forms", 0xFF00, 0xFFEF)])
    assert not script.is_target_char("１")  # FULLWIDTH DIGIT ONE
    assert script.is_target_char("Ａ")


def test_ascii_range_never_flags_english():
    script = TargetScript([UnicodeBlock("everything", 0, 0x10FFFF)])
    assert not script.has_target_char("plain English 42")
    assert script.has_target_char("é")


def test_presets_name_their_blocks():
    assert set(PRESETS) >= {"cjk", "hangul", "kana", "cyrillic"}
    hangul = TargetScript(PRESETS["hangul"])
    assert hangul.is_target_char("한") and not hangul.is_target_char("中")
    kana = TargetScript(PRESETS["kana"])
    assert kana.is_target_char("ひ") and kana.is_target_char("カ")
    assert TargetScript(PRESETS["cyrillic"]).is_target_char("Ж")
    assert all(b.name for preset in PRESETS.values() for b in preset)
    merged = blocks_for(["cjk", "cjk", "hangul"])
    assert len(merged) == len(CJK) + len(PRESETS["hangul"])


def test_code_point_mask_agrees_with_predicate():
    script = TargetScript(CJK)
    mask = code_point_mask(script)
    for cp in (0x20, 0x3000, 0x3001, 0x4E00, 0x9FFF, 0xA000, 0x20000, 0x2A6DF, 0x2A6E0):
        assert bool(mask[cp]) == script.is_target_char(chr(cp))
    assert script.block_of("中") == "CJK Unified Ideographs"
