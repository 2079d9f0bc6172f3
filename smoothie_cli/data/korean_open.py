"""`korean-open`: our own open-ended Korean requests whose answers are paragraphs, not a word.

The Korean sets of OpenAI evals (`korean`) are closed items: a system message asks for "Yes"/"No", a letter or
one word, so greedy answers average about three characters, and a measure of how far smoothing moves free
Korean text (identical answers, BERTScore, language pass rate, Chinese under sampling) needs prompts the model
answers at length. Everyday, cultural, practical and technical topics, each in four request forms (explain,
pros and cons, advice for a beginner, a short paragraph), all in Korean. Written for this project; fully
deterministic. Append topics or forms to grow the set: ids are `korean-open-<topic index>-<form index>`, so
existing ids never change.
"""

from __future__ import annotations

from smoothie_cli.data.examples import Example

TOPICS: tuple[str, ...] = (
    "재택근무",
    "대중교통",
    "김장",
    "등산",
    "전기차",
    "독서 습관",
    "반려견 키우기",
    "가계부 쓰기",
    "태양광 발전",
    "한글의 창제",
    "온돌",
    "명절 음식",
    "스마트폰 사용 습관",
    "아침 운동",
    "외국어 공부",
    "분리수거",
    "캠핑",
    "충분한 수면",
    "인공지능",
    "도시의 지하철",
    "김치찌개 끓이기",
    "자원봉사",
    "사진 찍기",
    "시간 관리",
    "기후 변화",
)

FORMS: tuple[str, ...] = (
    "{topic}에 대해 초등학생도 이해할 수 있게 설명해 주세요.",
    "{topic}의 장점과 단점을 세 가지씩 알려 주세요.",
    "{topic}에 대해 처음 배우는 사람에게 줄 조언을 알려 주세요.",
    "{topic}에 관한 짧은 글을 한 문단으로 써 주세요.",
)


def korean_open_examples() -> list[Example]:
    """Every prompt of `korean-open`, in a fixed order (topic-major)."""
    return [
        Example(
            id=f"korean-open-{topic_index}-{form_index}",
            prompt=form.format(topic=topic),
            meta={"language": "ko", "topic": topic, "form": form_index},
        )
        for topic_index, topic in enumerate(TOPICS)
        for form_index, form in enumerate(FORMS)
    ]
