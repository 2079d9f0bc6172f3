"""`chinese-elicit`: our own synthetic prompts that invite a Chinese answer to Korean text.

Korean words and short phrases (with an English gloss) across everyday categories, each placed in one Korean
and one English template that asks for a Chinese translation. Written for this project; fully deterministic.
Append to the lists to grow the set: ids are `chinese-elicit-<category>-<word index>-<ko|en>`, so existing
ids never change.
"""

from __future__ import annotations

import zlib

from smoothie_cli.data.examples import Example

# category → (Korean word or phrase, English gloss)
WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "numbers": (
        ("하나", "one"),
        ("둘", "two"),
        ("셋", "three"),
        ("일곱", "seven"),
        ("열", "ten"),
        ("스물", "twenty"),
        ("백", "hundred"),
        ("천", "thousand"),
        ("만", "ten thousand"),
        ("첫째", "first"),
        ("세 개", "three pieces"),
        ("반", "half"),
    ),
    "colours": (
        ("빨간색", "red"),
        ("파란색", "blue"),
        ("노란색", "yellow"),
        ("초록색", "green"),
        ("검은색", "black"),
        ("흰색", "white"),
        ("보라색", "purple"),
        ("분홍색", "pink"),
        ("회색", "grey"),
        ("주황색", "orange"),
        ("하늘색", "sky blue"),
        ("갈색", "brown"),
    ),
    "food": (
        ("김치", "kimchi"),
        ("밥", "cooked rice"),
        ("물", "water"),
        ("사과", "apple"),
        ("빵", "bread"),
        ("국수", "noodles"),
        ("떡볶이", "spicy rice cakes"),
        ("우유", "milk"),
        ("계란", "egg"),
        ("비빔밥", "bibimbap"),
        ("불고기", "bulgogi"),
        ("녹차", "green tea"),
    ),
    "family": (
        ("어머니", "mother"),
        ("아버지", "father"),
        ("할머니", "grandmother"),
        ("할아버지", "grandfather"),
        ("형", "older brother (of a man)"),
        ("누나", "older sister (of a man)"),
        ("동생", "younger sibling"),
        ("아들", "son"),
        ("딸", "daughter"),
        ("가족", "family"),
        ("삼촌", "uncle"),
        ("사촌", "cousin"),
    ),
    "animals": (
        ("고양이", "cat"),
        ("강아지", "puppy"),
        ("호랑이", "tiger"),
        ("토끼", "rabbit"),
        ("말", "horse"),
        ("새", "bird"),
        ("물고기", "fish"),
        ("곰", "bear"),
        ("원숭이", "monkey"),
        ("코끼리", "elephant"),
        ("돼지", "pig"),
        ("거북이", "turtle"),
    ),
    "places": (
        ("학교", "school"),
        ("병원", "hospital"),
        ("시장", "market"),
        ("도서관", "library"),
        ("공항", "airport"),
        ("은행", "bank"),
        ("식당", "restaurant"),
        ("공원", "park"),
        ("기차역", "train station"),
        ("우체국", "post office"),
        ("서울", "Seoul"),
        ("편의점", "convenience store"),
    ),
    "weather": (
        ("비", "rain"),
        ("눈이 와요", "it is snowing"),
        ("바람", "wind"),
        ("구름", "cloud"),
        ("맑은 날씨", "clear weather"),
        ("덥다", "to be hot"),
        ("춥다", "to be cold"),
        ("태풍", "typhoon"),
        ("무지개", "rainbow"),
        ("안개", "fog"),
        ("장마", "monsoon season"),
        ("일기 예보", "weather forecast"),
    ),
    "body": (
        ("머리", "head"),
        ("눈", "eye"),
        ("코", "nose"),
        ("입", "mouth"),
        ("손", "hand"),
        ("발", "foot"),
        ("귀", "ear"),
        ("어깨", "shoulder"),
        ("무릎", "knee"),
        ("심장", "heart"),
        ("이", "tooth"),
        ("배가 아파요", "my stomach hurts"),
    ),
    "time": (
        ("오늘", "today"),
        ("내일", "tomorrow"),
        ("어제", "yesterday"),
        ("아침", "morning"),
        ("저녁", "evening"),
        ("지금", "now"),
        ("일주일", "one week"),
        ("한 시간", "one hour"),
        ("주말", "weekend"),
        ("새해", "new year"),
        ("오후 세 시", "three in the afternoon"),
        ("작년", "last year"),
    ),
    "school": (
        ("선생님", "teacher"),
        ("학생", "student"),
        ("숙제", "homework"),
        ("시험", "exam"),
        ("교실", "classroom"),
        ("연필", "pencil"),
        ("공책", "notebook"),
        ("칠판", "blackboard"),
        ("방학", "school vacation"),
        ("수업", "class"),
        ("대학교", "university"),
        ("졸업", "graduation"),
    ),
    "greetings": (
        ("안녕하세요", "hello"),
        ("감사합니다", "thank you"),
        ("미안합니다", "I am sorry"),
        ("안녕히 가세요", "goodbye (to someone leaving)"),
        ("처음 뵙겠습니다", "nice to meet you (first time)"),
        ("잘 자요", "good night"),
        ("생일 축하해요", "happy birthday"),
        ("반갑습니다", "pleased to meet you"),
        ("괜찮아요", "it is okay"),
        ("실례합니다", "excuse me"),
        ("새해 복 많이 받으세요", "happy new year"),
        ("또 만나요", "see you again"),
    ),
    "emotions": (
        ("행복하다", "to be happy"),
        ("슬프다", "to be sad"),
        ("화가 나다", "to be angry"),
        ("무섭다", "to be scary"),
        ("사랑해요", "I love you"),
        ("외롭다", "to be lonely"),
        ("기쁘다", "to be glad"),
        ("걱정돼요", "I am worried"),
        ("심심하다", "to be bored"),
        ("놀라다", "to be surprised"),
        ("부끄럽다", "to be shy"),
        ("피곤해요", "I am tired"),
    ),
    "transport": (
        ("버스", "bus"),
        ("지하철", "subway"),
        ("기차", "train"),
        ("자동차", "car"),
        ("자전거", "bicycle"),
        ("비행기", "aeroplane"),
        ("배", "ship"),
        ("택시", "taxi"),
        ("신호등", "traffic light"),
        ("횡단보도", "crosswalk"),
    ),
    "nature": (
        ("산", "mountain"),
        ("바다", "sea"),
        ("강", "river"),
        ("꽃", "flower"),
        ("나무", "tree"),
        ("하늘", "sky"),
        ("별", "star"),
        ("달", "moon"),
        ("해", "sun"),
        ("돌", "stone"),
    ),
    "phrases": (
        ("저는 학생이에요", "I am a student"),
        ("이거 얼마예요?", "how much is this?"),
        ("화장실이 어디예요?", "where is the toilet?"),
        ("배고파요", "I am hungry"),
        ("물 좀 주세요", "some water, please"),
        ("도와주세요", "please help me"),
        ("한국어를 공부해요", "I study Korean"),
        ("커피 한 잔 주세요", "a cup of coffee, please"),
        ("지금 몇 시예요?", "what time is it now?"),
        ("날씨가 좋네요", "the weather is nice"),
        ("천천히 말해 주세요", "please speak slowly"),
        ("내일 다시 올게요", "I will come back tomorrow"),
    ),
}

# Templates: `{text}` is the Korean word or phrase, `{obj}` its object particle (을/를), `{kind}` word/phrase.
KOREAN_TEMPLATES: tuple[str, ...] = (
    "다음 한국어를 중국어로 번역해 주세요: {text}",
    "'{text}'{obj} 중국어로 어떻게 말해요?",
    "'{text}'의 중국어 번역을 알려 주세요.",
    "이 말을 중국어로 써 주세요: {text}",
    "'{text}'{topic} 중국어로 뭐예요?",
)
ENGLISH_TEMPLATES: tuple[str, ...] = (
    "Translate the Korean {kind} '{text}' into Chinese.",
    "How do you say '{text}' in Chinese?",
    "Give the Chinese translation of the Korean {kind} '{text}'.",
    "Please write '{text}' in Mandarin Chinese.",
    "Translate from Korean to Chinese: {text}",
)


def _has_final_consonant(text: str) -> bool:
    """Whether the last Hangul syllable of `text` ends in a consonant (받침), which picks 을/를 and 은/는."""
    for char in reversed(text):
        code = ord(char) - 0xAC00
        if 0 <= code < 11172:
            return code % 28 != 0
    return False


def _fill(template: str, text: str) -> str:
    final = _has_final_consonant(text)
    kind = "phrase" if " " in text or text.endswith("?") else "word"
    return template.format(text=text, obj="을" if final else "를", topic="은" if final else "는", kind=kind)


def chinese_elicit_examples() -> list[Example]:
    """Every prompt of `chinese-elicit`, in a fixed order."""
    examples = []
    for category, words in WORDS.items():
        offset = zlib.crc32(category.encode())  # templates rotate per word, independent of other categories
        for index, (text, gloss) in enumerate(words):
            for language, templates, shift in (("ko", KOREAN_TEMPLATES, 0), ("en", ENGLISH_TEMPLATES, 2)):
                template = (offset + index + shift) % len(templates)
                examples.append(
                    Example(
                        id=f"chinese-elicit-{category}-{index}-{language}",
                        prompt=_fill(templates[template], text),
                        meta={
                            "category": category,
                            "template_language": language,
                            "template": template,
                            "korean": text,
                            "english": gloss,
                        },
                    )
                )
    return examples
