"""The autonomous-driving tag definition from PAI's user guide (pai-compat §5), verbatim.

``DRIVING_DEFINITION_ZH`` gives the same tags Chinese names (our translation; the guide's zh
edition shows only the guide prompt) so answers in Chinese can be checked too.
"""

from __future__ import annotations

from mmdm.adapters.models.base import TagDefinition

GUIDE_PROMPT_EN = (
    "As an experienced driver with many years on highways and city roads, you know how to "
    "handle common driving scenarios."
)
GUIDE_PROMPT_ZH = "作为一个拥有多年驾驶经验的老司机,你有着非常丰富的高速以及城市道路驾驶经验。"

DRIVING_TAGS: dict[str, str] = {
    "Reflective tape": (
        "Usually yellow or black-and-yellow striped. Attached to permanent obstacles like "
        "corners to warn drivers. Strip-shaped—not traffic cones, wheel locks, or water "
        "barrels!"
    ),
    "Wheel lock": (
        "Also called a parking lock. Prevents unauthorized parking when raised. Always "
        "specify if raised or lowered. Raised if there is a frame."
    ),
    "Lit construction vehicle": (
        "Has two arrow-shaped lights, lit. Not present otherwise."
    ),
    "Overturned vehicle": (
        "Vehicle lying on its side."
    ),
    "Fallen water barrel": (
        "A plastic barrier used to divide roads or block traffic. Usually red and "
        "wall-shaped. Common on highways, city roads, and overpasses. Larger than cones and "
        "flat. Specify if fallen."
    ),
    "Fallen traffic cone": (
        "Also called a traffic cone or snow cone. Cone-shaped temporary road marker. Not rod- "
        "or flat-shaped. To check if fallen, see if the base touches the ground."
    ),
    "Charging parking spot": (
        "Near a wall with visible charging equipment or labeled 'new energy vehicle'. Found "
        "only in parking lots (indoor or outdoor). Wheel locks are unrelated."
    ),
    "Speed bump": (
        "Usually yellow or black-and-yellow. Narrow ridge across the road to slow vehicles. "
        "Never in parking spots."
    ),
    "Deceleration lane markings": (
        "Fishbone-style dashed lines on both sides of the lane, inside solid lines."
    ),
    "Ramp": (
        "Large curved highway segment. Usually on the right side of main highways. Only "
        "confirm at toll plazas."
    ),
    "Ground shadow": (
        "Clear shadows on the ground."
    ),
    "Cloudy": (
        "Only if sky is visible and clearly cloudy."
    ),
    "Glare from headlights": (
        "Headlights appear as streaks instead of points—common at night or in rain."
    ),
    "Left-turn, right-turn, U-turn arrows": (
        "White (or sometimes yellow) arrows painted on lanes—not green-white highway signs. "
        "Only count clear center-lane arrows. Right-turn: clockwise from base to tip. "
        "Left-turn: counterclockwise. U-turn: U-shaped."
    ),
    "Crosswalk": (
        "White parallel stripes on roads or parking lots, for pedestrians. Never on highways, "
        "ramps, or tunnels."
    ),
    "Overexposure": (
        "Camera overexposed due to direct sunlight—daytime only."
    ),
    "Motor vehicle": (
        "Any other motorized vehicle in view."
    ),
    "Lane merge/diverge": (
        "Where multiple lanes become one—or one splits into many."
    ),
    "Intersection": (
        "Road intersection without lane markings inside it."
    ),
    "No-parking sign": (
        "Sign hanging or standing on ground with 'no parking' text or circle-with-P-and-slash "
        "symbol."
    ),
    "Lane markings": (
        "Road lane lines—especially blurry ones."
    ),
    "Stones or tires on road": (
        "Obstacles blocking traffic."
    ),
    "Tunnel": (
        "Watch for tunnel entrances and exits."
    ),
    "Wet road in rain": (
        "Road surface wet and slippery in rain."
    ),
    "Non-motorized vehicle": (
        "Bicycles, e-bikes, wheelchairs, unicycles, shopping carts—parked or moving."
    ),
}

DRIVING_DEFINITION = TagDefinition(guide_prompt=GUIDE_PROMPT_EN, tags=DRIVING_TAGS)

# Chinese name -> the English name of the same tag.
ZH_TO_EN: dict[str, str] = {
    "反光条": "Reflective tape",
    "地锁": "Wheel lock",
    "亮灯施工车": "Lit construction vehicle",
    "侧翻车辆": "Overturned vehicle",
    "倒地水马": "Fallen water barrel",
    "倒地锥桶": "Fallen traffic cone",
    "充电车位": "Charging parking spot",
    "减速带": "Speed bump",
    "减速标线": "Deceleration lane markings",
    "匝道": "Ramp",
    "地面阴影": "Ground shadow",
    "阴天": "Cloudy",
    "车灯眩光": "Glare from headlights",
    "左转、右转、掉头箭头": "Left-turn, right-turn, U-turn arrows",
    "人行横道": "Crosswalk",
    "过曝": "Overexposure",
    "机动车": "Motor vehicle",
    "车道合流/分流": "Lane merge/diverge",
    "路口": "Intersection",
    "禁停标志": "No-parking sign",
    "车道线": "Lane markings",
    "路面石块或轮胎": "Stones or tires on road",
    "隧道": "Tunnel",
    "雨天湿滑路面": "Wet road in rain",
    "非机动车": "Non-motorized vehicle",
}

DRIVING_DEFINITION_ZH = TagDefinition(
    guide_prompt=GUIDE_PROMPT_ZH, tags={zh: DRIVING_TAGS[en] for zh, en in ZH_TO_EN.items()})
